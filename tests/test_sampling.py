"""The sampler keeps one frame every N seconds and reports the frame's own time."""

from fractions import Fraction

import pytest
from conftest import write_video

from scenegrep.pipeline.errors import VideoError
from scenegrep.pipeline.files import video_for
from scenegrep.pipeline.sample import (
    STRATEGIES,
    VideoSampler,
    expected_seek_saving,
    keyframe_plan,
    next_target,
    sample_video,
)


def sampled_times(path, every):
    """The sampled times, checked to be the same with every decode strategy."""
    by_strategy = {
        strategy: [frame.t for frame in sample_video(video_for(path), every, strategy=strategy)]
        for strategy in STRATEGIES
    }
    assert by_strategy["seek"] == by_strategy["decode"] == by_strategy["auto"]
    return by_strategy["decode"]


def write_sparse_keyframes(path, frames, rate, gop, size=(96, 64)):
    """H.264 with a keyframe every `gop` frames and B-frames, like broadcast files.

    Each frame differs (grey level and a bar whose length is the frame index)
    so tests can tell which frame a sample is.
    """
    return write_video(path, range(frames), rate=rate, size=size, index_bar=True,
                       options={"g": str(gop), "bf": "3", "sc_threshold": "0"})


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


@pytest.mark.parametrize("container", ["mp4", "mkv"])
@pytest.mark.parametrize("every", [1, 2, 5])
def test_seeking_keeps_the_same_frames_as_decoding_through(tmp_path, container, every):
    # Keyframes every 50 frames (1.67 s at 29.97 fps) with B-frames: seeking
    # jumps to the last keyframe before a sample, and must land on the very
    # frame that decoding every frame keeps, with the same pts time.
    path = write_sparse_keyframes(tmp_path / f"sparse.{container}", 600, Fraction(30000, 1001), 50)
    video = video_for(path)

    def samples(strategy):
        with VideoSampler(video, every, strategy=strategy) as sampler:
            kept = [(frame.t, frame.pixels[:8].mean(), frame.pixels[8:].mean()) for frame in sampler]
            return kept, sampler.used_strategy

    through, used_through = samples("decode")
    seeking, used_seeking = samples("seek")
    assert (used_through, used_seeking) == ("decode", "seek")
    assert len(through) == len(range(0, 20, every))
    assert [t for t, *_ in seeking] == pytest.approx([t for t, *_ in through], abs=1e-9)
    assert [t for t, *_ in through] == pytest.approx([k * every * 1.001 for k in range(len(through))], abs=0.02)
    for (_, bar_a, grey_a), (_, bar_b, grey_b) in zip(through, seeking):
        assert bar_a == pytest.approx(bar_b, abs=1) and grey_a == pytest.approx(grey_b, abs=1)


def test_auto_seeks_only_where_keyframes_are_sparse(tmp_path):
    sparse = write_sparse_keyframes(tmp_path / "sparse.mp4", 300, 25, 250)  # keyframe every 10 s
    dense = write_sparse_keyframes(tmp_path / "dense.mp4", 300, 25, 12)  # about 2 per second
    used = {}
    for name, path, every in [("sparse-1s", sparse, 1), ("sparse-10s", sparse, 10), ("dense-2s", dense, 2)]:
        with VideoSampler(video_for(path), every) as sampler:
            list(sampler)
            used[name] = sampler.used_strategy
    # 1 s samples between 10 s keyframes would skip ~5 % of frames: not worth the seeks.
    assert used == {"sparse-1s": "decode", "sparse-10s": "seek", "dense-2s": "seek"}


def test_expected_seek_saving_follows_keyframe_spacing():
    every_10s = [0.0, 10.0, 20.0, 30.0]
    assert expected_seek_saving(every_10s, 1) == pytest.approx(0.05)
    assert expected_seek_saving(every_10s, 5) == pytest.approx(0.25)
    assert expected_seek_saving(every_10s, 20) == pytest.approx(0.75)
    assert expected_seek_saving([0.0], 2) == 0.0


def test_keyframe_plan_fills_gaps_longer_than_the_interval():
    # Keyframes at 0, 1, 5.5 (a long shot) and the video ends at 8.
    plan = keyframe_plan([0.0, 1.0, 5.5], 2.0, end=8.0)
    assert plan == pytest.approx([0.0, 1.0, 2.5, 4.0, 5.5, 5.5 + 2.5 / 2])


def test_keyframes_sampling_keeps_keyframes_with_their_times_and_fills_gaps(tmp_path):
    # 25 fps, a keyframe every 50 frames (2 s), sampling every 1 s: every
    # keyframe (0, 2, 4 …) plus the frame at or after each midpoint.
    path = write_sparse_keyframes(tmp_path / "kf.mp4", 250, 25, 50)
    with VideoSampler(video_for(path), 1, sampling="keyframes") as sampler:
        frames = list(sampler)
        assert sampler.used_strategy == "keyframes"
    times = [frame.t for frame in frames]
    assert times == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], abs=1e-9)
    # Each sample is the frame shown at its time, as decoding every frame sees it.
    shown = {round(frame.t, 6): frame.pixels for frame in sample_video(video_for(path), 0.04, strategy="decode")}
    for frame in frames:
        assert abs(frame.pixels.astype(int) - shown[round(frame.t, 6)]).max() <= 2


def test_keyframes_sampling_with_dense_keyframes_keeps_all_of_them(tmp_path):
    path = write_sparse_keyframes(tmp_path / "dense.mkv", 100, 25, 10)  # keyframe every 0.4 s
    times = [frame.t for frame in sample_video(video_for(path), 2, sampling="keyframes")]
    assert times == pytest.approx([0.4 * k for k in range(10)], abs=1e-9)


def test_container_rates_near_ntsc_snap_to_the_exact_1001_fraction():
    from scenegrep.pipeline.decoders import container_rate

    assert container_rate(Fraction(14985, 500)) == Fraction(30000, 1001)
    assert container_rate(Fraction(2997, 125)) == Fraction(24000, 1001)  # 23.976
    assert container_rate(Fraction(30000, 1001)) == Fraction(30000, 1001)
    assert container_rate(Fraction(25, 1)) == 25 and container_rate(Fraction(24, 1)) == 24
    assert container_rate(Fraction(15, 2)) == Fraction(15, 2)  # 7.5 fps stays itself
    assert container_rate(None) is None


def write_alternating_shots(path, frames=120, shot=10):
    """25 fps, a shot change and a keyframe every `shot` frames (0.4 s): red
    striped shots (returned, as an image to search with) alternating with
    blue checkerboard ones."""
    import av
    import numpy as np

    red = np.zeros((64, 96, 3), np.uint8)
    red[..., 0], red[::8, :, 1] = 230, 255
    blue = np.zeros((64, 96, 3), np.uint8)
    yy, xx = np.mgrid[:64, :96]
    blue[(yy // 8 + xx // 8) % 2 == 0] = (20, 60, 240)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"g": str(shot), "bf": "0", "sc_threshold": "0"}
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(red if (index // shot) % 2 == 0 else blue, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return red


def test_keyframe_clips_follow_the_samples_not_the_interval(tmp_path, tiny_model, run_cli):
    import json

    from PIL import Image

    video = tmp_path / "shots.mp4"
    Image.fromarray(write_alternating_shots(video)).save(tmp_path / "red.png")
    db = tmp_path / "db"
    # Interval 2 s, but a keyframe every 0.4 s: samples at 0, 0.4, … 4.4.
    indexed = run_cli("index", video, "--db", db, "--model", tiny_model, "--every", "2", "--sampling", "keyframes")
    assert indexed.exit_code == 0, indexed.stderr
    from conftest import Backend

    (entry,) = Backend("embedded", db=str(db)).store().indexed_videos()
    assert entry.sampling == "keyframes" and entry.frames == 12

    result = run_cli("search", "--image", tmp_path / "red.png", "--db", db, "--within", "0.05", "--keep-duplicates",
                     "--json", "-k", "20")
    assert result.exit_code == 0, result.stderr
    clips = sorted(bound for clip in json.loads(result.stdout) for bound in (clip["start"], clip["end"]))
    # Each red shot is its own clip: a blue sample lies between two red ones
    # (0.8 s apart, well inside 1.5 intervals), and a clip ends at the next
    # sample, not 2 s after its last one.
    assert clips == pytest.approx([b for t in (0.0, 0.8, 1.6, 2.4, 3.2, 4.0) for b in (t, t + 0.4)], abs=1e-6)

    # A copy reuses the stored frames, so it keeps their sampling whatever this run asks for.
    import shutil

    shutil.copy2(video, tmp_path / "copy.mp4")
    copied = run_cli("index", tmp_path / "copy.mp4", "--db", db, "--json")
    assert copied.exit_code == 0 and json.loads(copied.stdout)["counts"]["copied"] == 1, copied.stderr
    entries = Backend("embedded", db=str(db)).store().indexed_videos()
    assert [entry.sampling for entry in entries] == ["keyframes", "keyframes"]

    # A grid index says so (and entries written before `sampling` existed count as grid).
    grid = tmp_path / "grid"
    assert run_cli("index", video, "--db", grid, "--model", tiny_model, "--every", "0.4").exit_code == 0
    (entry,) = Backend("embedded", db=str(grid)).store().indexed_videos()
    assert entry.sampling == "grid"
