/*
 * config.h - tracesvc's configuration: every flag once (config.c), read
 * from the command line and TRACESVC_* environment variables.
 */
#ifndef TC_CONFIG_H
#define TC_CONFIG_H

typedef struct config {
    const char *redis, *grpc, *http, *admin, *access_log, *keys, *tls_cert, *tls_key, *client_ca,
        *client_crl;
    const char *base_url, *hotline, *image_origins;
    const char *node_id, *limits_file, *trusted_proxy;
    long scan_ttl, http_max_conns;
    const char *limit[64]; /* --limit, in order */
    int nlimit;
    char node_buf[128];
    int insecure;
    int keys_group_read; /* --keys-allow-group-read */
    long threads, write_threads;
    long max_staleness, retention_s, heartbeat_ms, watch_buffer_mib;
    long copy_devices, copy_regions, copy_window, sale_undo_window;
    long forgery_percent, forgery_min, forgery_window, forgery_throttle;
    long redis_replicas, redis_replicas_wait, ready_staleness, redis_start_timeout;
    int shared_cq; /* TRACESVC_SHARED_CQ: one completion queue for all (bench/) */
} config;

/* Fill c from argv and the environment (flags win): 0, or 2 after a usage
 * or range error (said on stderr), or -1 after --help or --version (said
 * on stdout; exit 0). */
int configure(int argc, char **argv, config *c);

#endif
