/*
 * sg_probe_nofile.h — a header whose opening comment lacks @file, for the
 * api-docs-can-fail test: Doxygen then skips every symbol in it silently,
 * so docs/api_docs.py must report the header itself.
 */
#ifndef SG_PROBE_NOFILE_H
#define SG_PROBE_NOFILE_H

int sg_probe_hidden(int x);

#endif
