#!/bin/sh
# sentinel-entry.sh - start one Sentinel of docker/compose.yaml. Sentinel
# rewrites its config (what it learns of replicas, other Sentinels and
# failovers), so the config lives in the writable /data volume: made from
# the image's /etc/redis/sentinel.conf and the mounted secrets on the first
# start, kept afterwards.
set -eu
conf=/data/sentinel.conf
if [ ! -s "$conf" ]; then
    umask 077
    {
        cat /etc/redis/sentinel.conf
        echo "requirepass $(cat /run/secrets/sentinel_password)"
        echo "sentinel sentinel-pass $(cat /run/secrets/sentinel_password)"
        echo "sentinel auth-pass tracecode $(cat /run/secrets/redis_password)"
        echo "sentinel announce-ip ${ANNOUNCE:?set ANNOUNCE to this service name}"
    } > "$conf.tmp"
    mv "$conf.tmp" "$conf"
fi
exec redis-sentinel "$conf"
