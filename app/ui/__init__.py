"""The operator console served at ``/ui``: pages, sessions, status views and static assets.

Plain HTML, CSS and vanilla JavaScript shipped inside the package (``static/``, ``templates/``):
no build step, no CDN, nothing fetched at run time. The pages only show what the service's own
endpoints answer (``/v1/route``, ``/v1/chat/completions``) and the thin ``/ui/api/...`` views of
the decision log, the catalog and the keys (``routers.ui``).
"""
