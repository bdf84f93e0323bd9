"""Start a real nginx (Debian nginx-light) as a test peer: an origin with a fixed ~400-byte
response, or anything else through extra config. Everything nginx writes (pid, logs, temp files)
stays in the test's temporary directory; the process runs in the foreground with no master, so
the PID we hold is the one that serves, and ProcessTestCase ends it by that PID.

    from nginx import start_nginx
    port = free_port()
    start_nginx(self, port)                                  # origin: GET / -> 200, RESPONSE_BODY
    start_nginx(self, port2, location_conf="proxy_pass http://127.0.0.1:%d;" % port)
"""

import os

from harness import wait_port

NGINX = os.environ.get("PILLION_NGINX", "/usr/sbin/nginx")

# Letters and spaces only, so it needs no escaping inside an nginx "..." string.
RESPONSE_BODY = ("pillion test origin " * 20).rstrip() + "\n"  # 400 bytes


def nginx_config(directory, port, extra_server_conf="", extra_http_conf="", location_conf=None,
                 access_log=None, host="127.0.0.1", body=RESPONSE_BODY):
    """The text of an nginx.conf serving on host:port, with every path inside `directory`.

    location_conf replaces the default `return 200 "<body>";` of `location /`.
    access_log: a file path to log every request to, optionally followed by access_log
    parameters such as "combined buffer=64k" (default: no access log)."""
    if location_conf is None:
        location_conf = 'default_type text/plain;\n      return 200 "%s";' % body
    log = "access_log %s;" % access_log if access_log else "access_log off;"
    listen = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    d = directory
    return f"""daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
  worker_connections 4096;
}}
http {{
  {log}
  client_body_temp_path {d}/client_body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  # Load tests reuse connections for their whole run (the default closes every 1000 requests).
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  {extra_http_conf}
  server {{
    listen {listen};
    {extra_server_conf}
    location / {{
      {location_conf}
    }}
  }}
}}
"""


def write_nginx_config(directory, port, **kwargs):
    """Writes nginx.conf into `directory` (created if needed) and returns its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "nginx.conf")
    with open(path, "w") as f:
        f.write(nginx_config(directory, port, **kwargs))
    return path


def nginx_command(directory, config_path):
    # -e: the startup error log too, before the config's error_log applies.
    return [NGINX, "-p", directory, "-e", os.path.join(directory, "error.log"), "-c", config_path]


def start_nginx(test_case, port, extra_server_conf="", extra_http_conf="", location_conf=None,
                access_log=None, name=None):
    """Starts nginx on 127.0.0.1:port through test_case.start (a harness.ProcessTestCase), so it is
    killed by PID in tearDown, waits until it accepts connections and returns the Popen."""
    directory = test_case.path(name or "nginx-%d" % port)
    config = write_nginx_config(directory, port, extra_server_conf=extra_server_conf,
                                extra_http_conf=extra_http_conf, location_conf=location_conf,
                                access_log=access_log)
    proc = test_case.start(nginx_command(directory, config))
    try:
        wait_port(port, proc=proc)
    except (RuntimeError, TimeoutError) as e:
        log = os.path.join(directory, "error.log")
        text = open(log).read() if os.path.exists(log) else ""
        raise RuntimeError(f"nginx did not start: {e}\n{text}") from e
    return proc
