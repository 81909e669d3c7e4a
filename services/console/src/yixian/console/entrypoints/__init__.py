"""The console's HTTP face: server-rendered pages (Jinja2) enhanced by htmx."""
