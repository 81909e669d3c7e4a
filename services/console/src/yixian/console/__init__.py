"""A Yixian node's console: secretaries, operators and auditors in a browser.

Server-rendered pages (FastAPI, Jinja2, htmx committed as a static asset), in Chinese,
signed in with the node's API keys. What a person does goes through the node's services
with that person's key; what only the operator's command does runs in-process, as it does.
"""
