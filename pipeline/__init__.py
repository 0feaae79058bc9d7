"""scenegrep's staged pipeline: sample → encode → store → search → present.

Each stage is a module usable on its own: `sample` decodes frames without
touching a model, `encode` embeds pixels or text without a store, `store`
keeps vectors without knowing about video, `search` turns vectors into clips,
`present` turns clips into files (CSV, JSON, EDL, playlists, HTML) and player commands.
"""
