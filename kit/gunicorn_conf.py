"""The gunicorn settings of every service: `gunicorn -c python:kit.gunicorn_conf ...`.

Knative sets PORT; one worker process with threads per container (Knative scales containers).
"""

import os

from kit.config import DEFAULT_MAX_EVENT_BYTES

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# gthread, reading each request whole before a thread takes it (slow clients cost no thread).
worker_class = "kit.worker.BufferingThreadWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# A read-only root file system: the heartbeat file goes to memory.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
keepalive = 75
graceful_timeout = 20
# A binary-mode event carries its attributes in headers: let a 64 KiB (up to MAX_EVENT_BYTES)
# header through, and more than gunicorn's 100 headers.
limit_request_field_size = int(os.environ.get("MAX_EVENT_BYTES", DEFAULT_MAX_EVENT_BYTES))
limit_request_fields = 1000
# The worker enforces the URL limit (wire/limits.py), which is over gunicorn's maximum.
limit_request_line = 0
accesslog = None
# gunicorn's control socket lives under $HOME, which is read-only in a container and shared
# between local instances.
control_socket_disable = True
logger_class = "kit.gunicorn_logging.JsonLogger"
