/*
 * ctl_keys.c - keys list | activate | compromise (regulator).
 */
#include "ctl.h"

static const char *key_state_name(int v)
{
    return enum_name(&tracecode__v1__key_state__descriptor, v, "KEY_STATE_");
}

static void print_key(const opts *o, const Tracecode__V1__Key *k)
{
    size_t i;

    if (o->json) {
        printf("{\"key_id\":%u,\"kind\":", k->key_id);
        jstr(k->kind);
        printf(",\"algorithm\":");
        jstr(k->algorithm);
        printf(",\"state\":\"%s\",\"activated_unix\":%lld,\"compromised_since_unix\":%lld,"
               "\"compromise_reason\":",
               key_state_name(k->state), (long long)k->activated_unix,
               (long long)k->compromised_since_unix);
        jstr(k->compromise_reason);
        printf(",\"nodes_holding\":[");
        for (i = 0; i < k->n_nodes_holding; i++) {
            printf(i ? "," : "");
            jstr(k->nodes_holding[i]);
        }
        printf("]}\n");
        return;
    }
    printf("%-4u %-8s %-12s", k->key_id, k->kind, key_state_name(k->state));
    if (k->compromised_since_unix)
        printf(" since=%lld reason=%s", (long long)k->compromised_since_unix, k->compromise_reason);
    if (k->n_nodes_holding) {
        printf(" nodes=");
        for (i = 0; i < k->n_nodes_holding; i++)
            printf("%s%s", i ? "," : "", k->nodes_holding[i]);
    }
    putchar('\n');
}

/* keys list | keys activate KID | keys compromise KID --since UNIX --reason TEXT */
int cmd_keys(rpc_client *cl, const opts *o, int argc, char **argv)
{
    ProtobufCMessage *resp;
    unsigned long long v;
    rpc_result r;
    size_t i;

    if (argc == 1 && strcmp(argv[0], "list") == 0) {
        Tracecode__V1__ListKeysRequest q = TRACECODE__V1__LIST_KEYS_REQUEST__INIT;
        Tracecode__V1__ListKeysResponse *out;
        if (rpc_call_unary(cl, "/tracecode.v1.RegistryService/ListKeys", &q.base,
                           &tracecode__v1__list_keys_response__descriptor, &resp, &r))
            return rpc_failed(&r);
        out = (Tracecode__V1__ListKeysResponse *)resp;
        if (!o->json) {
            printf("live nodes:");
            for (i = 0; i < out->n_nodes; i++)
                printf(" %s", out->nodes[i]);
            printf("\n");
        }
        for (i = 0; i < out->n_keys; i++)
            print_key(o, out->keys[i]);
        rpc_msg_free(resp);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[0], "activate") == 0 || strcmp(argv[0], "compromise") == 0)) {
        if (!parse_u64(argv[1], 255, &v) || !v)
            return fail("key id '%s' must be 1..255", argv[1]);
    } else {
        return fail("usage: keys list | keys activate KID | keys compromise KID --since UNIX "
                    "--reason TEXT");
    }
    if (strcmp(argv[0], "activate") == 0) {
        Tracecode__V1__ActivateKeyRequest q = TRACECODE__V1__ACTIVATE_KEY_REQUEST__INIT;
        q.key_id = (uint32_t)v;
        q.request_id = (char *)(o->request_id ? o->request_id : "");
        if (rpc_call_unary(cl, "/tracecode.v1.RegistryService/ActivateKey", &q.base,
                           &tracecode__v1__activate_key_response__descriptor, &resp, &r))
            return rpc_failed(&r);
        print_key(o, ((Tracecode__V1__ActivateKeyResponse *)resp)->key);
        rpc_msg_free(resp);
        return 0;
    }
    {
        Tracecode__V1__CompromiseKeyRequest q = TRACECODE__V1__COMPROMISE_KEY_REQUEST__INIT;
        Tracecode__V1__CompromiseKeyResponse *out;
        unsigned long long since;
        if (!o->since || !parse_u64(o->since, INT64_MAX, &since) || !since)
            return fail("keys compromise needs --since UNIX_TIME (seconds > 0): batches issued "
                        "from then on verify KEY_COMPROMISED");
        if (!o->reason || !*o->reason)
            return fail("keys compromise needs --reason TEXT (it is logged)");
        q.key_id = (uint32_t)v;
        q.since_unix = (int64_t)since;
        q.reason = (char *)o->reason;
        q.request_id = (char *)(o->request_id ? o->request_id : "");
        if (rpc_call_unary(cl, "/tracecode.v1.RegistryService/CompromiseKey", &q.base,
                           &tracecode__v1__compromise_key_response__descriptor, &resp, &r))
            return rpc_failed(&r);
        out = (Tracecode__V1__CompromiseKeyResponse *)resp;
        print_key(o, out->key);
        if (!o->json)
            printf("batches affected: %u\n", out->batches_affected);
        rpc_msg_free(resp);
        return 0;
    }
}
