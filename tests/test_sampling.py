"""The sampler keeps one frame every N seconds and reports the frame's own time."""

from fractions import Fraction

import pytest
from conftest import write_video

from scenegrep.pipeline.errors import VideoError
from scenegrep.pipeline.files import video_for
from scenegrep.pipeline.sample import VideoSampler, next_target, sample_video


def sampled_times(path, every):
    return [frame.t for frame in sample_video(video_for(path), every)]


def test_ntsc_times_come_from_pts_not_rounded_fps(tmp_path):
    # 29.97 fps: frame 60 is at 2.002 s. Frame number ÷ 30 would say 2.000 s,
    # and drift by 3.6 s per hour.
    path = write_video(tmp_path / "ntsc.mp4", range(300), rate=Fraction(30000, 1001))
    times = sampled_times(path, 2)
    assert times == pytest.approx([0.0, 2.002, 4.004, 6.006, 8.008], abs=1e-9)


def test_pal_25_fps(tmp_path):
    path = write_video(tmp_path / "pal.mkv", range(250), rate=25)
    # 2.5 s falls between frames 62 (2.48 s) and 63 (2.52 s): the first at or after it is kept.
    assert sampled_times(path, 2.5) == pytest.approx([0.0, 2.52, 5.0, 7.52], abs=1e-9)


def test_variable_frame_rate_uses_each_frames_time(tmp_path):
    # Irregular frame times in milliseconds, with a 3.3 s gap (a held frame).
    ms = [0, 40, 90, 700, 1010, 1500, 1990, 2030, 5330, 5400, 6100, 7999, 8000]
    path = write_video(tmp_path / "vfr.mkv", ms, rate=25, time_base=Fraction(1, 1000))
    times = sampled_times(path, 2)
    # Targets 0, 2, 4, 6, 8: the first frame at or after each; the frame after
    # the gap (5.33 s) stands for 4 s, and the next target is 6 s.
    assert times == pytest.approx([0.0, 2.03, 5.33, 6.1, 8.0], abs=1e-9)


def test_samples_carry_rgb_pixels_of_the_right_frame(tmp_path):
    path = write_video(tmp_path / "grey.mp4", range(100), rate=25, size=(32, 32))
    frames = list(sample_video(video_for(path), 1))
    assert [f.pixels.shape for f in frames] == [(32, 32, 3)] * 4
    # grey level = index × 7: frame 25 → 175, frame 50 → 350 % 256 = 94 (H.264 is lossy: ±4)
    assert abs(int(frames[1].pixels.mean()) - 175) <= 4
    assert abs(int(frames[2].pixels.mean()) - 94) <= 4


def test_next_target_is_on_the_grid_after_the_frame():
    assert next_target(0.0, 2) == 2
    assert next_target(2.002, 2) == 4
    assert next_target(5.33, 2) == 6
    # A frame a hair before a target (float noise) counts as on it.
    assert next_target(1.9999999999, 2) == 4


def test_sampler_reports_stream_info(tmp_path):
    path = write_video(tmp_path / "ntsc.mp4", range(300), rate=Fraction(30000, 1001))
    with VideoSampler(video_for(path), 2) as sampler:
        assert sampler.info.rate == Fraction(30000, 1001)
        assert sampler.info.duration == pytest.approx(10.01, abs=0.05)
        assert sampler.info.backend == "pyav"


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "cannot open"), (b"this is a text file, not a video\n" * 20, "cannot open")],
)
def test_not_a_video_raises_a_clear_error(tmp_path, content, reason):
    path = tmp_path / "fake.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError, match=reason):
        VideoSampler(video_for(path), 2)


def test_audio_only_file_is_refused(tmp_path):
    import av
    import numpy as np

    path = tmp_path / "song.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        samples = np.zeros((1, 1024), np.float32)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(VideoError, match="no video stream"):
        VideoSampler(video_for(path), 2)


def test_memory_does_not_grow_with_video_length(tmp_path):
    # The sampler streams: peak Python allocations while sampling a 40 s video
    # stay near those of a 4 s one (a few frames, not the whole video).
    import tracemalloc

    def peak(frames):
        path = write_video(tmp_path / f"v{frames}.mp4", range(frames), rate=25, size=(320, 240))
        tracemalloc.start()
        count = sum(1 for _ in sample_video(video_for(path), 1))
        peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return count, peak_bytes

    short_count, short_peak = peak(100)
    long_count, long_peak = peak(1000)
    assert (short_count, long_count) == (4, 40)
    assert long_peak < short_peak * 2 + 1_000_000
