/*
 * test_store_url.c - the store's --redis URLs without a Redis: redis://,
 * rediss:// (TLS options in the URL and the environment),
 * redis-sentinel:// (Sentinels, primary name, passwords), what is refused,
 * what messages show of them, and store_open's answers when nothing
 * listens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store.h"
#include "store_int.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void test_bad_url(void **state)
{
    store *s;
    char err[STORE_ERR_MAX];

    (void)state;
    assert_int_equal(store_open("http://x", &s, err, sizeof(err)), STORE_ERR_ARG);
    assert_non_null(strstr(err, "cannot parse redis url 'http://x'"));
    assert_int_equal(store_open("redis://127.0.0.1:1", &s, err, sizeof(err)),
                     STORE_ERR_UNAVAILABLE);
    assert_non_null(strstr(err, "cannot connect to redis"));
    assert_int_equal(store_open("unix:/nonexistent/redis.sock", &s, err, sizeof(err)),
                     STORE_ERR_UNAVAILABLE);
}

/* redis-sentinel:// URLs: Sentinels, primary name, db, the Sentinels'
 * own password; what is refused; what messages show of them. */
static void test_sentinel_urls(void **state)
{
    char shown[512], err[STORE_ERR_MAX];
    st_addr a;
    store *s;
    int i;

    (void)state;
    unsetenv("TRACESVC_SENTINEL_PASSWORD");
    assert_int_equal(st_parse_url("redis-sentinel://10.0.0.1:5000,sentinel-b:26380/tc-main?db=3&"
                                  "sentinel_password=s%40p",
                                  &a),
                     0);
    assert_int_equal(a.nsentinel, 2);
    assert_string_equal(a.sentinel[0].host, "10.0.0.1");
    assert_int_equal(a.sentinel[0].port, 5000);
    assert_string_equal(a.sentinel[1].host, "sentinel-b");
    assert_int_equal(a.sentinel[1].port, 26380);
    assert_string_equal(a.master, "tc-main");
    assert_int_equal(a.db, 3);
    assert_string_equal(a.sentinel_pass, "s@p");
    assert_string_equal(a.host, ""); /* known once the Sentinels are asked */

    assert_int_equal(st_parse_url("redis-sentinel://app:p%3Aw@s1/tc", &a), 0);
    assert_int_equal(a.sentinel[0].port, 26379);
    assert_string_equal(a.user, "app");
    assert_string_equal(a.pass, "p:w");
    assert_string_equal(a.sentinel_pass, "");
    setenv("TRACESVC_SENTINEL_PASSWORD", "from-env", 1);
    assert_int_equal(st_parse_url("redis-sentinel://s1/tc", &a), 0);
    assert_string_equal(a.sentinel_pass, "from-env");
    unsetenv("TRACESVC_SENTINEL_PASSWORD");

    static const char *const bad[] = {
        "redis-sentinel://s1",          "redis-sentinel://s1/",
        "redis-sentinel:///tc",         "redis-sentinel://s1:0/tc",
        "redis-sentinel://s1:99999/tc", "redis-sentinel://s1/tc?x=1",
        "redis-sentinel://s1/t c",      "redis-sentinel://s1,/tc",
        "redis-sentinel://s1/tc?db=16", "redis-sentinel://s1:26379x/tc",
    };
    for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++)
        assert_int_equal(st_parse_url(bad[i], &a), -1);
    assert_int_equal(st_parse_url("redis-sentinel://a,b,c,d,e,f,g,h/tc", &a), 0);
    assert_int_equal(st_parse_url("redis-sentinel://a,b,c,d,e,f,g,h,i/tc", &a), -1);

    st_redact("redis-sentinel://app:secret@s1:1,s2:2/tc?db=1&sentinel_password=topsecret&x", shown,
              sizeof(shown));
    assert_string_equal(shown, "redis-sentinel://***@s1:1,s2:2/tc?db=1&sentinel_password=***&x");
    st_redact("redis://:pw@h:1/2", shown, sizeof(shown));
    assert_string_equal(shown, "redis://***@h:1/2");
    st_redact("redis://:pw@h:1/2", shown, 9); /* cut, never past the buffer */
    assert_string_equal(shown, "redis://");

    /* TLS: a CA file that cannot be read stops the start; no Redis yet
     * is waited for (UNAVAILABLE), saying where the bridge failed. */
    assert_int_equal(store_open("rediss://127.0.0.1:1?ca=/nonexistent.pem", &s, err, sizeof(err)),
                     STORE_ERR_ARG);
    assert_non_null(strstr(err, "cannot read the CA file"));
    assert_int_equal(store_open("rediss://:pw@127.0.0.1:1", &s, err, sizeof(err)),
                     STORE_ERR_UNAVAILABLE);
    assert_non_null(strstr(err, "TLS to 127.0.0.1:1: cannot connect"));
    assert_null(strstr(err, "pw"));
    /* No Sentinel answers: UNAVAILABLE naming them (the node retries). */
    assert_int_equal(
        store_open("redis-sentinel://127.0.0.1:1,127.0.0.1:2/tc", &s, err, sizeof(err)),
        STORE_ERR_UNAVAILABLE);
    assert_non_null(strstr(err, "Sentinel 127.0.0.1:2"));
    assert_int_equal(
        store_open("redis-sentinel://127.0.0.1:1/tc?sentinel_password=zzz", &s, err, sizeof(err)),
        STORE_ERR_UNAVAILABLE);
    assert_null(strstr(err, "zzz"));
}

/* rediss:// URLs: the address, the TLS options (percent-decoded), the
 * same options from the environment where the URL is silent, and what is
 * refused. */
static void test_rediss_urls(void **state)
{
    st_addr a;

    (void)state;
    assert_int_equal(st_parse_url("rediss://u:p%40w@redis.test:6380/2?ca=/etc/c%20a.pem&cert=/c."
                                  "pem&key=/k.pem&sni=other.test",
                                  &a),
                     0);
    assert_true(a.use_tls);
    assert_string_equal(a.host, "redis.test");
    assert_int_equal(a.port, 6380);
    assert_int_equal(a.db, 2);
    assert_string_equal(a.user, "u");
    assert_string_equal(a.pass, "p@w");
    assert_string_equal(a.tls_ca, "/etc/c a.pem");
    assert_string_equal(a.tls_cert, "/c.pem");
    assert_string_equal(a.tls_key, "/k.pem");
    assert_string_equal(a.tls_sni, "other.test");
    setenv("TRACESVC_REDIS_TLS_CA", "/env/ca.pem", 1);
    assert_int_equal(st_parse_url("rediss://127.0.0.1:6380", &a), 0);
    assert_string_equal(a.tls_ca, "/env/ca.pem");
    assert_int_equal(st_parse_url("rediss://127.0.0.1:6380?ca=/url.pem", &a), 0);
    assert_string_equal(a.tls_ca, "/url.pem"); /* the URL wins */
    unsetenv("TRACESVC_REDIS_TLS_CA");
    assert_int_equal(st_parse_url("redis://127.0.0.1:6380", &a), 0);
    assert_false(a.use_tls);
    assert_int_equal(st_parse_url("rediss://127.0.0.1:6380?verify=none", &a), -1);
    assert_int_equal(st_parse_url("rediss://127.0.0.1:6380?ca=%zz", &a), -1);
    assert_int_equal(st_parse_url("redis://127.0.0.1:6380?ca=/x.pem", &a), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_url),
        cmocka_unit_test(test_rediss_urls),
        cmocka_unit_test(test_sentinel_urls),
    };
    signal(SIGPIPE, SIG_IGN); /* as tracesvc does: see store.h */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
