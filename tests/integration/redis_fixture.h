/*
 * redis_fixture.h - a private redis-server for one test: its own temp
 * dir, a Unix socket there, AOF on (fsync always), no TCP port. Started
 * with fork/exec, stopped by PID.
 */
#ifndef TC_REDIS_FIXTURE_H
#define TC_REDIS_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct rf {
    char dir[64];
    char sock[100];
    char url[160];
    pid_t pid;
} rf;

static int rf_can_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0), ok;

    if (fd < 0)
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static void rf_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* PONG, not LOADING: the data is loaded. */
static int rf_ready(const rf *f)
{
    char cmd[256], out[64] = "";
    FILE *p;

    snprintf(cmd, sizeof(cmd), "redis-cli -s '%s' PING 2>/dev/null", f->sock);
    p = popen(cmd, "r");
    if (!p)
        return 0;
    if (!fgets(out, sizeof(out), p))
        out[0] = '\0';
    pclose(p);
    return strncmp(out, "PONG", 4) == 0;
}

/* Start (or restart, keeping dir and data) the server. 0 on success. */
static int rf_start(rf *f)
{
    int i;

    if (!f->dir[0]) {
        memcpy(f->dir, "/tmp/tc-redis-XXXXXX", 21);
        if (!mkdtemp(f->dir))
            return -1;
        snprintf(f->sock, sizeof(f->sock), "%s/redis.sock", f->dir);
        snprintf(f->url, sizeof(f->url), "unix:%s", f->sock);
    }
    f->pid = fork();
    if (f->pid < 0)
        return -1;
    if (f->pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", f->sock,
               "--unixsocketperm", "700", "--dir", f->dir, "--appendonly", "yes", "--appendfsync",
               "always", "--save", "", "--daemonize", "no", "--enable-debug-command", "local",
               (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 500; i++) {
        if (rf_can_connect(f->sock) && rf_ready(f))
            return 0;
        rf_sleep_ms(10);
    }
    return -1;
}

static void rf_stop(rf *f)
{
    int st;

    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, &st, 0);
        f->pid = 0;
    }
    unlink(f->sock);
}

static void rf_destroy(rf *f)
{
    char cmd[128];

    rf_stop(f);
    if (f->dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", f->dir);
    }
}

/* Run a redis-cli command against the fixture (for test set-up only). */
static int rf_cli(const rf *f, const char *args)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "redis-cli -s '%s' %s > /dev/null", f->sock, args);
    return system(cmd);
}

#endif
