#!/bin/sh
# redis-entry.sh [PRIMARY] - start one Redis of docker/compose.yaml.
# On the first start it writes /data/redis.conf (mode 600): an include of
# the image's /etc/redis/redis.conf, the password from the mounted secret,
# the name this Redis announces, and `replicaof PRIMARY` for a replica.
# Later starts keep that file: Sentinel rewrites it on a failover (a former
# primary comes back as the replica Sentinel made it).
set -eu
conf=/data/redis.conf
if [ ! -s "$conf" ]; then
    pass=$(cat /run/secrets/redis_password)
    umask 077
    {
        echo "include /etc/redis/redis.conf"
        echo "requirepass $pass"
        echo "masterauth $pass"
        echo "replica-announce-ip ${ANNOUNCE:?set ANNOUNCE to this service name}"
        if [ -n "${1:-}" ]; then echo "replicaof $1 6379"; fi
    } > "$conf.tmp"
    mv "$conf.tmp" "$conf"
fi
exec redis-server "$conf"
