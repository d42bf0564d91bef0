"""Human play in a browser: the study file, the game on the server, the SQLite store, the
ASGI app and its static page, export and report. See docs/web.md.

Nothing is imported here, so ``coplay --help`` does not load the web stack."""
