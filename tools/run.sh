#!/usr/bin/env bash
# `make run`: Debian's nginx with the module in the foreground, the page
# and the API on http://127.0.0.1:8080, every path inside ./var.
#
# Knobs (environment): VCONV_PORT (8080), VCONV_LOG_LEVEL (notice; info
# or debug show more).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
var="$top/var"
port="${VCONV_PORT:-8080}"
level="${VCONV_LOG_LEVEL:-notice}"

mkdir -p "$var/logs" "$var/store" "$var/tmp"

# conf.example, with its paths moved into ./var and the page from ./html
sed -e "s|/usr/lib/nginx/modules/ngx_http_vconv_module.so|$top/build/ngx_http_vconv_module.so|" \
    -e "s|/var/log/nginx/|$var/logs/|g" \
    -e "s|/run/nginx.pid|$var/nginx.pid|" \
    -e "s|/var/lib/vconv|$var/store|" \
    -e "s|/usr/share/vconv/html|$top/html|" \
    -e "s|listen 8080;|listen 127.0.0.1:$port;|" \
    -e "s|^error_log \(.*\) warn;|error_log \1 $level;|" \
    -e "s|^http {|http {\n    client_body_temp_path $var/tmp/body;\n    proxy_temp_path $var/tmp/proxy;\n    fastcgi_temp_path $var/tmp/fastcgi;\n    uwsgi_temp_path $var/tmp/uwsgi;\n    scgi_temp_path $var/tmp/scgi;|" \
    "$top/conf.example" > "$var/nginx.conf"

if [ "$(id -u)" = 0 ]; then
    sed -i "s|^worker_processes|user root root;\nworker_processes|" \
        "$var/nginx.conf"
fi

/usr/sbin/nginx -p "$var" -c "$var/nginx.conf" -e "$var/logs/error.log" -t -q \
    || { echo "vconv: nginx -t failed on $var/nginx.conf"; exit 1; }

rel=${var#"$PWD"/}
cat <<EOF
vconv: nginx $(/usr/sbin/nginx -v 2>&1 | sed 's|.*/||') with build/ngx_http_vconv_module.so
  config  $rel/nginx.conf (conf.example, paths moved into $rel)
  store   $rel/store
  logs    $rel/logs/error.log ($level), $rel/logs/access.log
  stop    Ctrl-C

  Open http://127.0.0.1:$port/
EOF

exec /usr/sbin/nginx -p "$var" -c "$var/nginx.conf" -e "$var/logs/error.log" \
    -g "daemon off;"
