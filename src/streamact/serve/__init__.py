"""`streamact serve`: a live web page (browser camera) and a multi-stream server over one shared model.

`app.create_app` builds the ASGI app (FastAPI, the ``serve`` extra); `session` holds the streams (own engine state,
newest-wins frame slot, counters); `limits` what a server accepts; ``static/`` the page (plain HTML/JS/CSS).
Nothing here imports torch: the runtime comes from the caller.
"""
