/**
 * @file
 * sg_probe.h — a public header with gaps, for the api-docs-can-fail test:
 * docs/api_docs.py must name every undocumented symbol below. Not part of
 * the library.
 */
#ifndef SG_PROBE_H
#define SG_PROBE_H

/** A documented function. */
int sg_probe_documented(int x);

int sg_probe_undocumented(int x);

#define SG_PROBE_MACRO 3

/** A documented enum with an undocumented value. */
typedef enum sg_probe_kind {
    SG_PROBE_A, /**< documented */
    SG_PROBE_B
} sg_probe_kind;

/** A documented struct with an undocumented field. */
typedef struct sg_probe_s {
    int documented_field; /**< documented */
    int probe_field;
} sg_probe_s;

#endif
