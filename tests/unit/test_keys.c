/*
 * test_keys.c - keyring files: create, load, rotate, retire, and every
 * kind of bad file (permissions, truncation, wrong sizes, wrong names).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "keys.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fixture {
    char dir[64];
    char err[512];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));

    if (!fx)
        return -1;
    memcpy(fx->dir, "/tmp/tc-keys-XXXXXX", 20);
    if (!mkdtemp(fx->dir))
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[128];
    int rc;

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static void path_of(const fixture *fx, unsigned kid, char *out, size_t cap)
{
    snprintf(out, cap, "%s/key-%03u", fx->dir, kid);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    size_t n = strlen(text);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

static void test_init_open(void **state)
{
    fixture *fx = *state;
    keys_ring *ring;
    keys_info info[4];
    struct stat st;
    char path[128];

    assert_int_equal(keys_init_dir(fx->dir, fx->err, sizeof(fx->err)), KEYS_OK);
    path_of(fx, 1, path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(keys_init_dir(fx->dir, fx->err, sizeof(fx->err)), KEYS_ERR_EXISTS);
    assert_non_null(strstr(fx->err, "already holds keys"));

    assert_int_equal(keys_open(fx->dir, &ring, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(keys_list(ring, info, 4), 2);
    assert_int_equal(info[0].kind, KEYS_KIND_MAC);
    assert_int_equal(info[1].kind, KEYS_KIND_ED25519);
    assert_int_equal(keys_active(ring, KEYS_KIND_MAC), 1);
    assert_int_equal(keys_active(ring, KEYS_KIND_ED25519), 2);
    assert_non_null(keys_mac(ring, 1));
    assert_null(keys_mac(ring, 2)); /* wrong kind */
    assert_null(keys_mac(ring, 3)); /* absent */
    assert_non_null(keys_ed25519_public(ring, 2));
    assert_memory_equal(info[1].pub, keys_ed25519_public(ring, 2), CODEC_PUB_BYTES);
    keys_free(ring);
    keys_free(NULL);
}

static void mint_and_check(keys_ring *ring, unsigned profile, uint8_t *code, codec_code *c)
{
    codec_fields f = {0, profile, 0, 77, 5};
    char text[CODEC_MAX_TEXT_LEN + 1];
    size_t len, tlen;
    int known;

    assert_int_equal(keys_mint(ring, &f, code, &len), KEYS_OK);
    tlen = codec_text_encode(code, len, text, sizeof(text));
    assert_int_equal(codec_parse(text, tlen, c, NULL), CODEC_OK);
    assert_int_equal(keys_check(ring, c, &known), CODEC_OK);
    assert_int_equal(known, 1);
}

static void test_rotate_retire(void **state)
{
    fixture *fx = *state;
    keys_ring *ring, *again;
    uint8_t code[CODEC_MAX_BYTES];
    codec_code old_mac, old_sig, c;
    unsigned kid;
    int known;

    assert_int_equal(keys_init_dir(fx->dir, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(keys_open(fx->dir, &ring, fx->err, sizeof(fx->err)), KEYS_OK);
    mint_and_check(ring, CODEC_PROFILE_MAC, code, &old_mac);
    mint_and_check(ring, CODEC_PROFILE_SIG, code, &old_sig);
    assert_int_equal(old_mac.f.kid, 1);
    assert_int_equal(old_sig.f.kid, 2);

    assert_int_equal(keys_rotate(ring, KEYS_KIND_MAC, &kid, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(kid, 3);
    assert_int_equal(keys_rotate(ring, KEYS_KIND_ED25519, &kid, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(kid, 4);
    mint_and_check(ring, CODEC_PROFILE_MAC, code, &c);
    assert_int_equal(c.f.kid, 3);
    /* Old codes still verify, from a fresh load of the directory too. */
    assert_int_equal(keys_open(fx->dir, &again, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(keys_active(again, KEYS_KIND_MAC), 3);
    assert_int_equal(keys_active(again, KEYS_KIND_ED25519), 4);
    assert_int_equal(keys_check(again, &old_mac, &known), CODEC_OK);
    assert_int_equal(keys_check(again, &old_sig, &known), CODEC_OK);

    /* The active key cannot be retired; a verify-only one can. */
    assert_int_equal(keys_retire(again, 3, fx->err, sizeof(fx->err)), KEYS_ERR_STATE);
    assert_non_null(strstr(fx->err, "rotate before retiring"));
    assert_int_equal(keys_retire(again, 1, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(keys_retire(again, 9, fx->err, sizeof(fx->err)), KEYS_ERR_NOKEY);
    assert_int_equal(keys_check(again, &old_mac, &known), CODEC_ERR_TAG);
    assert_int_equal(known, 0);
    keys_free(again);

    /* The tombstone holds no secret, and id 1 stays taken. */
    assert_int_equal(keys_open(fx->dir, &again, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_null(keys_mac(again, 1));
    assert_int_equal(keys_rotate(again, KEYS_KIND_MAC, &kid, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(kid, 5);
    keys_free(again);
    {
        char path[128], buf[1024];
        FILE *f;
        size_t n;
        path_of(fx, 1, path, sizeof(path));
        f = fopen(path, "r");
        assert_non_null(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        assert_null(strstr(buf, "secret"));
        assert_non_null(strstr(buf, "state retired"));
    }
    keys_free(ring);
}

/* stage: a new verify-only key that verifies at once and does not become
 * the active one; keys_dir_has sees its file. */
static void test_stage(void **state)
{
    fixture *fx = *state;
    keys_ring *ring, *again;
    unsigned kid;

    assert_int_equal(keys_init_dir(fx->dir, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(keys_open(fx->dir, &ring, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_false(keys_dir_has(fx->dir, 3));
    assert_int_equal(keys_stage(ring, KEYS_KIND_MAC, &kid, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(kid, 3);
    assert_true(keys_dir_has(fx->dir, 3));
    assert_false(keys_dir_has(fx->dir, 0));
    assert_false(keys_dir_has(fx->dir, 256));
    assert_int_equal(keys_active(ring, KEYS_KIND_MAC), 1);
    assert_non_null(keys_mac(ring, 3));
    assert_int_equal(keys_open(fx->dir, &again, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(keys_active(again, KEYS_KIND_MAC), 1); /* also from the files */
    assert_non_null(keys_mac(again, 3));
    assert_int_equal(keys_stage(again, 7, &kid, fx->err, sizeof(fx->err)), KEYS_ERR_ARG);
    keys_free(again);
    keys_free(ring);
}

static void test_exhaust_ids(void **state)
{
    fixture *fx = *state;
    keys_ring *ring;
    unsigned kid = 0, i;

    assert_int_equal(keys_init_dir(fx->dir, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(keys_open(fx->dir, &ring, fx->err, sizeof(fx->err)), KEYS_OK);
    for (i = 3; i <= CODEC_KID_MAX; i++) {
        assert_int_equal(keys_rotate(ring, KEYS_KIND_MAC, &kid, fx->err, sizeof(fx->err)), KEYS_OK);
        assert_int_equal(kid, i);
    }
    assert_int_equal(keys_rotate(ring, KEYS_KIND_MAC, &kid, fx->err, sizeof(fx->err)),
                     KEYS_ERR_FULL);
    assert_non_null(strstr(fx->err, "all 255 key ids"));
    keys_free(ring);
}

/* A rotation cut between its two writes leaves two active keys on disk:
 * the higher id wins and the lower one verifies only. */
static void test_interrupted_rotation(void **state)
{
    fixture *fx = *state;
    keys_ring *ring;
    keys_record r;
    char path[128], text[KEYS_FILE_MAX];

    assert_int_equal(keys_init_dir(fx->dir, fx->err, sizeof(fx->err)), KEYS_OK);
    memset(&r, 0, sizeof(r));
    r.kid = 9;
    r.kind = KEYS_KIND_MAC;
    r.state = KEYS_ACTIVE;
    r.created = 1;
    memset(r.secret, 0x5a, sizeof(r.secret));
    assert_true(keys_record_format(&r, text, sizeof(text)) > 0);
    path_of(fx, 9, path, sizeof(path));
    write_text(path, text, 0600);
    assert_int_equal(keys_open(fx->dir, &ring, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(keys_active(ring, KEYS_KIND_MAC), 9);
    assert_non_null(keys_mac(ring, 1));
    keys_free(ring);
}

static void expect_open_fails(fixture *fx, keys_err want, const char *needle)
{
    keys_ring *ring = (keys_ring *)1;

    assert_int_equal(keys_open(fx->dir, &ring, fx->err, sizeof(fx->err)), want);
    assert_null(ring);
    if (!strstr(fx->err, needle))
        fail_msg("error '%s' lacks '%s'", fx->err, needle);
}

static void test_bad_files(void **state)
{
    fixture *fx = *state;
    char path[128], good[KEYS_FILE_MAX], text[2 * KEYS_FILE_MAX];
    FILE *f;
    size_t n;

    assert_int_equal(keys_init_dir(fx->dir, fx->err, sizeof(fx->err)), KEYS_OK);
    path_of(fx, 1, path, sizeof(path));
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(good, 1, sizeof(good) - 1, f);
    fclose(f);
    good[n] = '\0';

    assert_int_equal(chmod(path, 0640), 0);
    expect_open_fails(fx, KEYS_ERR_PERM, "readable by group or others (mode 0640); chmod 600");
    assert_int_equal(chmod(path, 0604), 0);
    expect_open_fails(fx, KEYS_ERR_PERM, "mode 0604");
    assert_int_equal(chmod(path, 0600), 0);

    /* Truncated before the secret. */
    memcpy(text, good, n);
    *strstr(text, "secret") = '\0';
    write_text(path, text, 0600);
    expect_open_fails(fx, KEYS_ERR_FORMAT, "line 6: missing field 'secret'");

    /* Truncated inside the secret. */
    memcpy(text, good, n + 1);
    text[n - 21] = '\n'; /* 44 of the 64 hex digits remain */
    text[n - 20] = '\0';
    write_text(path, text, 0600);
    expect_open_fails(fx, KEYS_ERR_SIZE, "secret has 22 bytes, want 32");

    /* A secret too long. */
    memcpy(text, good, n - 1);
    memcpy(text + n - 1, "00\n", 4);
    write_text(path, text, 0600);
    expect_open_fails(fx, KEYS_ERR_SIZE, "secret has 33 bytes, want 32");

    /* No final newline: the last line is incomplete. */
    memcpy(text, good, n);
    text[n - 1] = '\0';
    write_text(path, text, 0600);
    expect_open_fails(fx, KEYS_ERR_FORMAT, "missing field 'secret'");

    /* Larger than any key file. */
    memset(text, 'x', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    write_text(path, text, 0600);
    expect_open_fails(fx, KEYS_ERR_SIZE, "limit 1024");

    /* A file whose name and kid differ. */
    write_text(path, good, 0600);
    path_of(fx, 7, path, sizeof(path));
    write_text(path, good, 0600);
    expect_open_fails(fx, KEYS_ERR_FORMAT, "holds kid 1");
    assert_int_equal(unlink(path), 0);

    /* Other names are ignored, the keyring loads again. */
    snprintf(path, sizeof(path), "%s/notes.txt", fx->dir);
    write_text(path, "hello", 0644);
    {
        keys_ring *ring;
        assert_int_equal(keys_open(fx->dir, &ring, fx->err, sizeof(fx->err)), KEYS_OK);
        keys_free(ring);
    }
    snprintf(path, sizeof(path), "%s/nowhere", fx->dir);
    {
        keys_ring *ring;
        assert_int_equal(keys_open(path, &ring, fx->err, sizeof(fx->err)), KEYS_ERR_IO);
        assert_non_null(strstr(fx->err, "cannot open keyring"));
    }
}

/* The parser alone: each malformed text and its error. */
static const struct bad {
    const char *text;
    keys_err err;
    const char *needle;
} bad_records[] = {
    {"", KEYS_ERR_FORMAT, "line 1: want 'tracecode-key v1'"},
    {"tracecode-key v2\n", KEYS_ERR_FORMAT, "line 1"},
    {"tracecode-key v1\nkid 0\n", KEYS_ERR_FORMAT, "kid must be 1..255"},
    {"tracecode-key v1\nkid 256\n", KEYS_ERR_FORMAT, "kid must be 1..255"},
    {"tracecode-key v1\nkid 01\n", KEYS_ERR_FORMAT, "kid must be 1..255"},
    {"tracecode-key v1\nkind mac\n", KEYS_ERR_FORMAT, "line 2: want field 'kid'"},
    {"tracecode-key v1\nkid 1\nkind rsa\n", KEYS_ERR_FORMAT, "kind must be mac or ed25519"},
    {"tracecode-key v1\nkid 1\nkind mac\nstate on\n", KEYS_ERR_FORMAT, "state must be"},
    {"tracecode-key v1\nkid 1\nkind mac\nstate active\ncreated -1\n", KEYS_ERR_FORMAT,
     "created must be"},
    {"tracecode-key v1\nkid 1\nkind mac\nstate active\ncreated 1\nsecret abc\n", KEYS_ERR_FORMAT,
     "odd hex length"},
    {"tracecode-key v1\nkid 1\nkind mac\nstate active\ncreated 1\nsecret "
     "000000000000000000000000000000000000000000000000000000000000000G\n",
     KEYS_ERR_FORMAT, "not lower-case hex at byte 31"},
    {"tracecode-key v1\nkid 1\nkind mac\nstate active\ncreated 1\nsecret "
     "00000000000000000000000000000000000000000000000000000000000000AA\n",
     KEYS_ERR_FORMAT, "not lower-case hex"},
    {"tracecode-key v1\nkid 1\nkind mac\nstate active\ncreated 1\nsecret "
     "0000000000000000000000000000000000000000000000000000000000000000\nextra\n",
     KEYS_ERR_FORMAT, "line 7: unexpected text"},
    {"tracecode-key v1\nkid 1\nkind mac\nstate retired\ncreated 1\nsecret "
     "0000000000000000000000000000000000000000000000000000000000000000\n",
     KEYS_ERR_FORMAT, "retired key keeps no secret"},
};

static void test_record_parse(void **state)
{
    size_t i;
    keys_record r;
    char err[256], out[KEYS_FILE_MAX];
    const char *ok = "tracecode-key v1\nkid 17\nkind ed25519\nstate verify-only\ncreated "
                     "1763720000\nsecret "
                     "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";

    (void)state;
    for (i = 0; i < sizeof(bad_records) / sizeof(bad_records[0]); i++) {
        assert_int_equal(keys_record_parse(bad_records[i].text, strlen(bad_records[i].text), &r,
                                           err, sizeof(err)),
                         bad_records[i].err);
        if (!strstr(err, bad_records[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad_records[i].needle);
    }
    assert_int_equal(keys_record_parse(ok, strlen(ok), &r, err, sizeof(err)), KEYS_OK);
    assert_int_equal(r.kid, 17);
    assert_int_equal(r.kind, KEYS_KIND_ED25519);
    assert_int_equal(r.state, KEYS_VERIFY_ONLY);
    assert_true(r.created == 1763720000);
    assert_int_equal(r.secret[1], 0x11);
    assert_int_equal(keys_record_format(&r, out, sizeof(out)), strlen(ok));
    assert_string_equal(out, ok);
    assert_int_equal(keys_record_format(&r, out, 20), 0);
}

static void test_sign_export(void **state)
{
    fixture *fx = *state;
    keys_ring *ring;
    uint8_t sig[CODEC_SIG_BYTES];
    const uint8_t msg[] = "manifest";
    char json[4096], hex[2 * CODEC_PUB_BYTES + 1];
    const uint8_t *pub;
    unsigned kid = 0;
    size_t need;
    int i;

    assert_int_equal(keys_init_dir(fx->dir, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(keys_open(fx->dir, &ring, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(keys_sign(ring, msg, sizeof(msg), sig, &kid), KEYS_OK);
    assert_int_equal(kid, 2);
    pub = keys_ed25519_public(ring, kid);
    assert_int_equal(codec_ed25519_verify(pub, msg, sizeof(msg), sig), CODEC_OK);

    need = keys_export_public(ring, json, sizeof(json));
    assert_true(need < sizeof(json));
    assert_int_equal(strlen(json), need);
    for (i = 0; i < CODEC_PUB_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", pub[i]);
    assert_non_null(strstr(json, hex));
    assert_non_null(strstr(json, "{\"kid\":1,\"kind\":\"mac\",\"state\":\"active\""));
    assert_non_null(strstr(json, "{\"kid\":2,\"kind\":\"ed25519\",\"state\":\"active\""));
    assert_null(strstr(json, "secret"));
    /* Too small a buffer: the needed size is still reported. */
    assert_int_equal(keys_export_public(ring, json, 10), need);
    keys_free(ring);
}

/* A keyring mounted as a Kubernetes Secret: key-NNN -> ..data/key-NNN,
 * ..data -> ..2026_12_03_10_00_00.1/, files 0440 for an fsGroup. Refused
 * as it is, saying why; taken with KEYS_OPEN_SECRET_VOLUME; a link that
 * leads outside the directory, a file others may read or the group may
 * write, refused even then. */
static void test_secret_volume(void **state)
{
    fixture *fx = *state;
    char stamp[256], data[256], link[256], target[512], outside[256], cmd[1200];
    keys_ring *ring = NULL;
    unsigned kid;

    assert_int_equal(keys_init_dir(fx->dir, fx->err, sizeof(fx->err)), KEYS_OK);
    snprintf(stamp, sizeof(stamp), "%s/..2026_12_03_10_00_00.1", fx->dir);
    snprintf(data, sizeof(data), "%s/..data", fx->dir);
    assert_int_equal(mkdir(stamp, 0755), 0);
    for (kid = 1; kid <= 2; kid++) {
        snprintf(link, sizeof(link), "%s/key-%03u", fx->dir, kid);
        snprintf(target, sizeof(target), "%s/key-%03u", stamp, kid);
        assert_int_equal(rename(link, target), 0);
        assert_int_equal(chmod(target, 0440), 0);
        snprintf(target, sizeof(target), "..data/key-%03u", kid);
        assert_int_equal(symlink(target, link), 0);
    }
    assert_int_equal(symlink("..2026_12_03_10_00_00.1", data), 0);

    expect_open_fails(fx, KEYS_ERR_PERM, "is a symbolic link (a Kubernetes Secret volume?)");
    assert_int_equal(
        keys_open_ex(fx->dir, KEYS_OPEN_SECRET_VOLUME, &ring, fx->err, sizeof(fx->err)), KEYS_OK);
    assert_int_equal(keys_active(ring, KEYS_KIND_MAC), 1);
    assert_int_equal(keys_active(ring, KEYS_KIND_ED25519), 2);
    keys_free(ring);

    /* Others may read it: refused even from a Secret volume. */
    snprintf(target, sizeof(target), "%s/key-001", stamp);
    assert_int_equal(chmod(target, 0444), 0);
    ring = (keys_ring *)1;
    assert_int_equal(
        keys_open_ex(fx->dir, KEYS_OPEN_SECRET_VOLUME, &ring, fx->err, sizeof(fx->err)),
        KEYS_ERR_PERM);
    assert_null(ring);
    assert_non_null(strstr(fx->err, "readable by others (mode 0444)"));
    assert_int_equal(chmod(target, 0460), 0); /* group-writable */
    assert_int_equal(
        keys_open_ex(fx->dir, KEYS_OPEN_SECRET_VOLUME, &ring, fx->err, sizeof(fx->err)),
        KEYS_ERR_PERM);
    assert_int_equal(chmod(target, 0440), 0);

    /* A link that leads out of the directory. */
    snprintf(outside, sizeof(outside), "%s-outside", fx->dir);
    assert_int_equal(mkdir(outside, 0700), 0);
    snprintf(link, sizeof(link), "%s/key-001", fx->dir);
    snprintf(cmd, sizeof(cmd), "cp -p '%s' '%s/key-001'", target, outside);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(unlink(link), 0);
    snprintf(target, sizeof(target), "%s/key-001", outside);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(
        keys_open_ex(fx->dir, KEYS_OPEN_SECRET_VOLUME, &ring, fx->err, sizeof(fx->err)),
        KEYS_ERR_PERM);
    assert_non_null(strstr(fx->err, "leads outside the keyring directory"));
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", outside);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_retire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exhaust_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_volume, setup, teardown),
        cmocka_unit_test(test_record_parse),
        cmocka_unit_test_setup_teardown(test_sign_export, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
