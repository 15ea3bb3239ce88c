"""gunicorn's settings for every gunicorn started from the project's folder (the image's CMD,
Procfile.prod under make prod-local, the end-to-end stack of the tests): gunicorn reads
./gunicorn.conf.py by default. Command-line options still win."""

# gunicorn 23+ opens a control socket for gunicornc at $XDG_RUNTIME_DIR/gunicorn.ctl or
# ~/.gunicorn/gunicorn.ctl: one path for every instance of the same user, so two of them (two
# test stacks, prod-local beside a test) fought over it. Nothing here uses gunicornc.
control_socket_disable = True
