#!/usr/bin/env bash
# `make run`: Debian's nginx with the module in the foreground, the page
# and the API on http://127.0.0.1:8080, every path inside ./var.
#
# Also https://127.0.0.1:8443 (HTTP/2), with a self-signed certificate
# made once into var/tls/ (openssl).
#
# Knobs (environment): VCONV_PORT (8080), VCONV_TLS_PORT (8443),
# VCONV_LOG_LEVEL (notice; info or debug show more).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
var="$top/var"
port="${VCONV_PORT:-8080}"
level="${VCONV_LOG_LEVEL:-notice}"
tls_port="${VCONV_TLS_PORT:-8443}"

mkdir -p "$var/logs" "$var/store" "$var/tmp" "$var/tls"

# conf.example's HTTPS server: a self-signed pair for localhost, once
if [ ! -s "$var/tls/cert.pem" ] || [ ! -s "$var/tls/key.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -sha256 -days 3650 -nodes \
        -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$var/tls/key.pem" -out "$var/tls/cert.pem" 2>/dev/null \
        || { echo "vconv: openssl could not make $var/tls/cert.pem"; exit 1; }
fi

# conf.example, with its paths moved into ./var and the page from ./html
sed -e "s|/usr/lib/nginx/modules/ngx_http_vconv_module.so|$top/build/ngx_http_vconv_module.so|" \
    -e "s|/var/log/nginx/|$var/logs/|g" \
    -e "s|/run/nginx.pid|$var/nginx.pid|" \
    -e "s|/var/lib/vconv|$var/store|" \
    -e "s|/usr/share/vconv/html|$top/html|" \
    -e "s|listen 8080;|listen 127.0.0.1:$port;|" \
    -e "s|listen 8443 ssl http2;|listen 127.0.0.1:$tls_port ssl http2;|" \
    -e "s|/etc/ssl/certs/vconv.pem|$var/tls/cert.pem|" \
    -e "s|/etc/ssl/private/vconv.key|$var/tls/key.pem|" \
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
    or https://127.0.0.1:$tls_port/ (HTTP/2; $rel/tls/cert.pem is
    self-signed: the browser asks once)
EOF

exec /usr/sbin/nginx -p "$var" -c "$var/nginx.conf" -e "$var/logs/error.log" \
    -g "daemon off;"
