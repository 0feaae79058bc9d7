"""`scenegrep serve`: the search engine behind a local web page.

The page (`static/`) and a JSON API mirror the CLI: `engine` holds the model
and the open index for the life of the process, `params` turns form fields
into the CLI's query, filters and clip rules, `uploads` checks query images,
`media` serves videos and thumbnails by index id only, `downloads` packs
exports written by the CLI's own writers, `guard` checks every request
(token, host, body size, origin), `net` knows addresses and tokens, and
`app` wires them to routes.
"""
