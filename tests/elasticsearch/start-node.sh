#!/usr/bin/env bash
# Starts one Elasticsearch 8.17.2 test node (the runnable test distribution from Maven Central,
# org.elasticsearch.distribution.integ-test-zip:elasticsearch:8.17.2:zip, fetched into ~/.m2 by
# scripts/install-deps) in the foreground, for tests/elasticsearch.rs:
#   start-node.sh WORKDIR HTTP_PORT [-E setting=value ...]
# Single node on 127.0.0.1:HTTP_PORT, security off, 512 MB heap, config/data/logs under WORKDIR.
# With ES_HTTP_CERT, ES_HTTP_KEY (PEM files) and ES_BOOTSTRAP_PASSWORD set, security is on
# instead: HTTPS with that certificate, and the `elastic` user's password set through the
# node's keystore (bootstrap.password).
# The distribution is unpacked once outside the clone: ES_DIST_DIR, else
# /var/cache/packetbeat-rs/elasticsearch-8.17.2 for root (readable by the node's user) or
# ~/.cache/packetbeat-rs/elasticsearch-8.17.2. Elasticsearch refuses to run as root: as root the
# node runs as the user packetbeat-es (created by scripts/install-deps, or here when missing).
# Java 17: ES_JAVA_HOME, else the JDK of `java` on PATH.
set -euo pipefail
work=${1:?WORKDIR}
port=${2:?HTTP_PORT}
shift 2
version=8.17.2
zip="$HOME/.m2/repository/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$version/elasticsearch-$version.zip"
if [ "$(id -u)" = 0 ]; then cache=/var/cache/packetbeat-rs; else cache="$HOME/.cache/packetbeat-rs"; fi
dist=${ES_DIST_DIR:-$cache/elasticsearch-$version}
if [ ! -x "$dist/bin/elasticsearch" ]; then
  [ -f "$zip" ] || { echo "missing $zip: run scripts/install-deps" >&2; exit 2; }
  mkdir -p "$(dirname "$dist")"
  tmp=$(mktemp -d "$(dirname "$dist")/unpack.XXXXXX")
  unzip -q "$zip" -d "$tmp"
  chmod -R a+rX "$tmp"
  mv "$tmp/elasticsearch-$version" "$dist" 2>/dev/null || true
  rm -rf "$tmp"
fi
if [ -z "${ES_JAVA_HOME:-}" ]; then
  java=$(command -v java) || { echo "java (17) not found: run scripts/install-deps" >&2; exit 2; }
  ES_JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$java")")")
fi
mkdir -p "$work/config" "$work/data" "$work/logs"
cp -r "$dist/config/." "$work/config/"
# jvm.options names gc/error logs and heap dumps relative to the node's working directory
# (the distribution's home, read-only for the node's user): under WORKDIR instead.
sed -i -e "s|=logs/|=$work/logs/|g" -e "s|file=logs/|file=$work/logs/|g" -e "s|HeapDumpPath=data|HeapDumpPath=$work/data|" "$work/config/jvm.options"
security=(-E xpack.security.enabled=false)
if [ -n "${ES_HTTP_CERT:-}" ]; then
  cp "$ES_HTTP_CERT" "$work/config/http.crt"
  cp "$ES_HTTP_KEY" "$work/config/http.key"
  security=(-E xpack.security.enabled=true -E xpack.security.http.ssl.enabled=true
    -E xpack.security.http.ssl.certificate=http.crt -E xpack.security.http.ssl.key=http.key)
fi
run=()
if [ "$(id -u)" = 0 ]; then
  id packetbeat-es >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin packetbeat-es
  chown -R packetbeat-es: "$work"
  run=(setpriv --reuid=packetbeat-es --regid=packetbeat-es --init-groups)
fi
if [ -n "${ES_BOOTSTRAP_PASSWORD:-}" ]; then
  "${run[@]}" env ES_JAVA_HOME="$ES_JAVA_HOME" ES_PATH_CONF="$work/config" \
    "$dist/bin/elasticsearch-keystore" create >/dev/null
  printf '%s' "$ES_BOOTSTRAP_PASSWORD" | "${run[@]}" env ES_JAVA_HOME="$ES_JAVA_HOME" \
    ES_PATH_CONF="$work/config" "$dist/bin/elasticsearch-keystore" add -x bootstrap.password
fi
cd "$work"
exec "${run[@]}" env ES_JAVA_HOME="$ES_JAVA_HOME" ES_PATH_CONF="$work/config" \
  ES_JAVA_OPTS="-Xms512m -Xmx512m" \
  "$dist/bin/elasticsearch" -p "$work/es.pid" \
  -E network.host=127.0.0.1 -E http.port="$port" -E transport.port=0 \
  -E discovery.type=single-node "${security[@]}" \
  -E path.data="$work/data" -E path.logs="$work/logs" \
  -E cluster.routing.allocation.disk.threshold_enabled=false \
  -E action.destructive_requires_name=false \
  "$@"
