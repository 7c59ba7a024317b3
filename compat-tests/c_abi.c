/* The C ABI from plain C (C99, rsl_c.h only): every pointer is checked, nothing crashes. */
#include "rsl_c.h"

#include <stdio.h>
#include <string.h>

static int failures = 0;
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

int main(void) {
    CHECK(rsl_checksum((const uint8_t *)"123456789", 9) == 0x69BC7A5D9767AF72ULL);
    CHECK(rsl_checksum(NULL, 5) == 0);
    CHECK(!rsl_resolve_node(NULL));

    RslReplica *replica = NULL;
    RslConfigParam config;
    RslNode node;
    RslCallbacks callbacks;
    memset(&config, 0, sizeof config);
    memset(&node, 0, sizeof node);
    memset(&callbacks, 0, sizeof callbacks);
    CHECK(rsl_replica_initialize(NULL, &node, 1, &node, 6, &callbacks, &replica) == RSL_RESULT_INVALID_PARAMETER);
    CHECK(rsl_replica_initialize(&config, &node, 1, &node, 6, NULL, &replica) == RSL_RESULT_INVALID_PARAMETER);
    /* A zero port, an empty id and missing callbacks are refused too. */
    CHECK(rsl_replica_initialize(&config, &node, 1, &node, 6, &callbacks, &replica) == RSL_RESULT_INVALID_PARAMETER);
    CHECK(replica == NULL);

    CHECK(rsl_replica_replicate(NULL, "x", 1, NULL, false, false) == RSL_RESULT_INVALID_PARAMETER);
    CHECK(rsl_replica_fast_read(NULL, 0, "x", 1, NULL, 0) == RSL_RESULT_INVALID_PARAMETER);
    CHECK(rsl_replica_current_sequence_number(NULL) == 0);
    CHECK(rsl_replica_unload(NULL) == RSL_RESULT_INVALID_PARAMETER);
    CHECK(rsl_replica_control(NULL, 0, 0) == RSL_RESULT_INVALID_PARAMETER);
    CHECK(rsl_replica_statistics(NULL, NULL) == RSL_RESULT_INVALID_PARAMETER);
    CHECK(rsl_replica_initialize_for_bootstrap(NULL, &node, 6, &callbacks, &replica) == RSL_RESULT_INVALID_PARAMETER);
    /* A valid self node, but version 3 has no bootstrap. */
    RslNode self_node = node;
    strcpy(self_node.member_id, "1");
    self_node.rsl_port = 20001;
    CHECK(rsl_replica_initialize_for_bootstrap(&config, &self_node, 3, &callbacks, &replica) ==
          RSL_RESULT_INVALID_PARAMETER);
    CHECK(replica == NULL);
    CHECK(rsl_replica_bootstrap(NULL, &node, 1, NULL, 0, 1) == RSL_RESULT_INVALID_PARAMETER);
    CHECK(rsl_replica_change_configuration(NULL, &node, 1, NULL, 0, NULL) == RSL_RESULT_INVALID_PARAMETER);
    CHECK(rsl_replica_copy_state(NULL, NULL) == RSL_RESULT_INVALID_PARAMETER);
    size_t cookie_len = 0;
    CHECK(rsl_replica_get_configuration_cookie(NULL, NULL, 0, &cookie_len) == RSL_RESULT_INVALID_PARAMETER);
    CHECK(rsl_replay(NULL, NULL, 0, 0, NULL, NULL) == RSL_RESULT_INVALID_PARAMETER);

    char buf[16];
    CHECK(rsl_checkpoint_latest(NULL, buf, sizeof buf) == 87);
    CHECK(rsl_checkpoint_latest("/nonexistent-rsl-dir", buf, sizeof buf) == 2);
    RslCheckpointReader *reader = NULL;
    CHECK(rsl_checkpoint_reader_open(NULL, &reader) == 87);
    CHECK(rsl_checkpoint_reader_open("/nonexistent.codex", &reader) == 2);
    CHECK(rsl_checkpoint_reader_size(NULL) == 0);
    CHECK(rsl_checkpoint_writer_write(NULL, NULL, 0) == 87);
    CHECK(rsl_checkpoint_reader_create_writer(NULL, "x.codex", NULL) == 87);
    CHECK(rsl_checkpoint_writer_close(NULL) == 87);
    CHECK(!rsl_checkpoint_change_replica_set(NULL, 0, NULL, 0));
    CHECK(!rsl_checkpoint_change_replica_set("/nonexistent.codex", 9, NULL, 0));
    rsl_checkpoint_reader_free(NULL);
    CHECK(!rsl_checkpoint_save(NULL, 6, 1, 1, NULL, 0, NULL, NULL));

    if (failures) {
        fprintf(stderr, "c_abi: %d check(s) failed\n", failures);
        return 1;
    }
    printf("c_abi: all checks passed\n");
    return 0;
}
