"""``gaitwatch dashboard``: a node's (or a hub's) events live in a browser, and the gallery managed from there.

The parts, one job each: ``feed`` reads the events (a thread, never blocked by a browser), ``live`` keeps the
current picture and says what changed, ``clients`` holds each browser's bounded queue of changes, ``desk``
makes gallery changes through the store the command line uses, ``det`` reads a threshold file's DET data,
``access`` holds the write token and the exposure rule, ``app`` is the ASGI application, ``server`` binds and
runs it, ``cli`` is the command. The page itself is ``static/``: plain files, no build step.
"""
