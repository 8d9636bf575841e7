/*
 * process.c - the process collector every Prometheus client library has,
 * under the same names, so stock dashboards and alerts work: resident and
 * virtual memory, CPU seconds, open and maximum descriptors, start time.
 * Read from /proc on each scrape (Linux).
 */
#include "node.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct proc_stat {
    double cpu_s, start_s;
    unsigned long long vsize, rss_pages;
} proc_stat;

/* /proc/self/stat after the command name (which may hold spaces and
 * parentheses: the last ')' ends it), and /proc/stat's boot time. */
static int read_stat(proc_stat *p)
{
    char line[1024], *q;
    unsigned long long utime, stime, start, btime = 0;
    long tick = sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n;

    if (!f)
        return -1;
    n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    if (!(q = strrchr(line, ')')) || tick <= 0)
        return -1;
    /* fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime(14) stime(15) cutime cstime priority nice
     * threads itrealvalue starttime(22) vsize(23) rss(24) */
    if (sscanf(q + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
               "%llu %llu %llu",
               &utime, &stime, &start, &p->vsize, &p->rss_pages) != 5)
        return -1;
    if ((f = fopen("/proc/stat", "r")) != NULL) {
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "btime %llu", &btime) == 1)
                break;
        fclose(f);
    }
    p->cpu_s = (double)(utime + stime) / (double)tick;
    p->start_s = (double)btime + (double)start / (double)tick;
    return 0;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

size_t svc_process_metrics(const svc *s, char *buf, size_t cap, size_t n)
{
    struct rlimit rl;
    proc_stat p;
    long fds = open_fds();

    (void)s;
    if (read_stat(&p) == 0) {
        n = svc_appendf(buf, cap, n,
                        "# HELP process_cpu_seconds_total Total user and system CPU time spent "
                        "in seconds.\n# TYPE process_cpu_seconds_total counter\n"
                        "process_cpu_seconds_total %.2f\n"
                        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                        "# TYPE process_resident_memory_bytes gauge\n"
                        "process_resident_memory_bytes %llu\n"
                        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                        "# TYPE process_virtual_memory_bytes gauge\n"
                        "process_virtual_memory_bytes %llu\n"
                        "# HELP process_start_time_seconds Start time of the process since unix "
                        "epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
                        "process_start_time_seconds %.2f\n",
                        p.cpu_s, p.rss_pages * (unsigned long long)sysconf(_SC_PAGESIZE), p.vsize,
                        p.start_s);
    }
    if (fds >= 0)
        n = svc_appendf(buf, cap, n,
                        "# HELP process_open_fds Number of open file descriptors.\n"
                        "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
                        fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        n = svc_appendf(buf, cap, n,
                        "# HELP process_max_fds Maximum number of open file descriptors.\n"
                        "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
                        (unsigned long long)rl.rlim_cur);
    return n;
}
