#!/usr/bin/env bash
# `make run`: Debian's nginx with the module in the foreground, the page
# and the API on http://127.0.0.1:8080, every path inside ./var.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
var="$top/var"
port="${VCONV_PORT:-8080}"

mkdir -p "$var/logs" "$var/store" "$var/tmp"

# conf.example, with its paths moved into ./var and the page from ./html
sed -e "s|/usr/lib/nginx/modules/ngx_http_vconv_module.so|$top/build/ngx_http_vconv_module.so|" \
    -e "s|/var/log/nginx/|$var/logs/|g" \
    -e "s|/run/nginx.pid|$var/nginx.pid|" \
    -e "s|/var/lib/vconv|$var/store|" \
    -e "s|/usr/share/vconv/html|$top/html|" \
    -e "s|listen 8080;|listen 127.0.0.1:$port;|" \
    -e "s|^error_log \(.*\) warn;|error_log \1 info;|" \
    -e "s|^http {|http {\n    client_body_temp_path $var/tmp/body;\n    proxy_temp_path $var/tmp/proxy;\n    fastcgi_temp_path $var/tmp/fastcgi;\n    uwsgi_temp_path $var/tmp/uwsgi;\n    scgi_temp_path $var/tmp/scgi;|" \
    "$top/conf.example" > "$var/nginx.conf"

if [ "$(id -u)" = 0 ]; then
    sed -i "s|^worker_processes|user root root;\nworker_processes|" \
        "$var/nginx.conf"
fi

echo "vconv: http://127.0.0.1:$port/ (logs in $var/logs, Ctrl-C stops)"

exec /usr/sbin/nginx -p "$var" -c "$var/nginx.conf" -e "$var/logs/error.log" \
    -g "daemon off;"
