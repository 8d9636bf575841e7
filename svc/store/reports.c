/*
 * reports.c - consumers' problem reports (lua/report.lua), in the
 * registry's slot: a hash per report and indexes by code, batch, product
 * and manufacturer, scored by the report's id.
 */
#include "store.h"
#include "store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K_REPORT_SEQ "{tc}:report-seq"

store_err store_report_add(store *s, const store_report *r, const store_report_rates *rates,
                           uint64_t *id, uint32_t *on_code, char *err, size_t errcap)
{
    const char *incr[] = {"INCR", K_REPORT_SEQ};
    redisReply *x;
    st_args a;
    store_err e;

    /* The id first (a failed write leaves a gap, never a duplicate). */
    if ((e = st_exec(s, 2, incr, NULL, &x, TIMEOUT_MS, 0, err, errcap)) != STORE_OK)
        return e;
    if (x->type != REDIS_REPLY_INTEGER || x->integer <= 0) {
        freeReplyObject(x);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: want the report id");
    }
    *id = (uint64_t)x->integer;
    freeReplyObject(x);
    st_script(&a, &st_lua_report);
    a.durable = 1;
    st_keyf(&a, "{tc}:report:%" PRIu64, *id);
    st_keyf(&a, "{tc}:report-rate:device:%s", r->device);
    st_keyf(&a, "{tc}:report-rate:code:%s", r->code);
    st_key(&a, "{tc}:reports");
    st_keyf(&a, "{tc}:reports:code:%s", r->code);
    st_keyf(&a, "{tc}:reports:batch:%" PRIu64, r->batch_id);
    st_keyf(&a, "{tc}:reports:product:%s", r->product_id);
    st_keyf(&a, "{tc}:reports:mfr:%s", r->issuer);
    st_arg_u64(&a, *id);
    st_arg_u64(&a, rates->per_device);
    st_arg_i64(&a, rates->device_window_s);
    st_arg_u64(&a, rates->per_code);
    st_arg_i64(&a, rates->code_window_s);
    st_arg(&a, "code");
    st_arg(&a, r->code);
    st_arg(&a, "batch");
    st_arg_u64(&a, r->batch_id);
    st_arg(&a, "product");
    st_arg(&a, r->product_id);
    st_arg(&a, "issuer");
    st_arg(&a, r->issuer);
    st_arg(&a, "reason");
    st_arg_i64(&a, r->reason);
    st_arg(&a, "text");
    st_arg(&a, r->text);
    st_arg(&a, "region");
    st_arg(&a, r->region);
    st_arg(&a, "via");
    st_arg(&a, r->via);
    if ((e = st_run_args(s, &a, &x, err, errcap)) != STORE_OK)
        return e;
    *on_code = x->type == REDIS_REPLY_INTEGER ? (uint32_t)x->integer : 0;
    freeReplyObject(x);
    return STORE_OK;
}

/* One report from its {field, value, ...} into out (strings copied, cut
 * to their fields' sizes: they were checked when written). */
static void report_of(const redisReply *kv, uint64_t id, store_report_row *out)
{
    memset(out, 0, sizeof(*out));
    out->id = id;
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        const char *k = kv->element[i]->str, *v = kv->element[i + 1]->str;
        if (kv->element[i]->type != REDIS_REPLY_STRING ||
            kv->element[i + 1]->type != REDIS_REPLY_STRING)
            continue;
        if (!strcmp(k, "code"))
            snprintf(out->code, sizeof(out->code), "%s", v);
        else if (!strcmp(k, "batch"))
            out->batch_id = strtoull(v, NULL, 10);
        else if (!strcmp(k, "product"))
            snprintf(out->product_id, sizeof(out->product_id), "%s", v);
        else if (!strcmp(k, "issuer"))
            snprintf(out->issuer, sizeof(out->issuer), "%s", v);
        else if (!strcmp(k, "reason"))
            out->reason = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "text"))
            snprintf(out->text, sizeof(out->text), "%s", v);
        else if (!strcmp(k, "region"))
            snprintf(out->region, sizeof(out->region), "%s", v);
        else if (!strcmp(k, "via"))
            snprintf(out->via, sizeof(out->via), "%s", v);
        else if (!strcmp(k, "created"))
            out->created_unix = strtoll(v, NULL, 10);
    }
}

store_err store_reports_query(store *s, const char *index, uint64_t after, size_t max,
                              store_report_row *out, size_t *n, char *err, size_t errcap)
{
    char lo[24], count[24];
    const char *range[] = {"ZRANGEBYSCORE", index, lo, "+inf", "LIMIT", "0", count};
    redisReply *ids, *r;
    st_args a;
    store_err e;
    size_t i;

    *n = 0;
    snprintf(lo, sizeof(lo), "(%" PRIu64, after);
    snprintf(count, sizeof(count), "%zu", max);
    if ((e = st_run(s, 7, range, NULL, &ids, err, errcap)) != STORE_OK)
        return e;
    if (ids->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(ids);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to ZRANGEBYSCORE");
    }
    if (ids->elements == 0) {
        freeReplyObject(ids);
        return STORE_OK;
    }
    st_script(&a, &st_lua_report_read);
    for (i = 0; i < ids->elements && i < max; i++)
        st_keyf(&a, "{tc}:report:%s", ids->element[i]->str);
    if ((e = st_run_args(s, &a, &r, err, errcap)) != STORE_OK) {
        freeReplyObject(ids);
        return e;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != i) {
        freeReplyObject(ids);
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to report_read");
    }
    for (i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_ARRAY && r->element[i]->elements)
            report_of(r->element[i], strtoull(ids->element[i]->str, NULL, 10), &out[(*n)++]);
    freeReplyObject(ids);
    freeReplyObject(r);
    return STORE_OK;
}
