"""`lsg-edge serve`: live captions in a browser page and over a WebSocket protocol (`protocol`).

Needs the `serve` extra (starlette, uvicorn, websockets); nothing is imported from it here.
"""
