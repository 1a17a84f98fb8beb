#!/usr/bin/env python3
"""api_docs.py -- run Doxygen on the public headers and fail on any gap.

usage: api_docs.py --doxygen PROG --doxyfile docs/Doxyfile --out DIR
                   [--expect-fail TEXT ...] HEADER...

Doxygen alone misses three kinds of gap, so this script also walks
Doxygen's XML output, which lists every member, documented or not:
  - a header without a `/** @file */` comment: with EXTRACT_ALL = NO,
    Doxygen then skips every function, macro and typedef in it silently;
  - an undocumented enum value: Doxygen 1.9.4 (Debian 12) does not warn;
  - settings that would hide gaps (EXTRACT_ALL = YES): forced off here.
Every warning Doxygen prints is a failure too (an undocumented function,
type, macro, struct field or variable; a doc-comment error).

Exit 0 when the reference is complete, 1 with one line per gap otherwise.
With --expect-fail the test is inverted (it shows the check can fail): exit
0 only if the check fails AND its report contains every TEXT given.
"""
import argparse
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

from check_report import verdict


def text_of(elem):
    return "".join(elem.itertext()).strip() if elem is not None else ""


def described(elem):
    return bool(text_of(elem.find("briefdescription")) or text_of(elem.find("detaileddescription")))


def check(args):
    """Run Doxygen; return the list of problems (empty if complete)."""
    headers = [os.path.abspath(h) for h in args.headers]
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    with open(args.doxyfile, encoding="utf-8") as f:
        config = f.read()
    config += "\n# added by docs/api_docs.py\n"
    config += "INPUT = " + " ".join('"%s"' % h for h in headers) + "\n"
    config += 'OUTPUT_DIRECTORY = "%s"\n' % out
    config += "EXTRACT_ALL = NO\nEXTRACT_STATIC = NO\nWARN_IF_UNDOCUMENTED = YES\n"
    config += "GENERATE_XML = YES\nXML_OUTPUT = xml\nXML_PROGRAMLISTING = NO\n"
    config += "WARN_AS_ERROR = NO\nWARN_LOGFILE =\nQUIET = YES\n"
    if not args.html:
        config += "GENERATE_HTML = NO\n"
    run = subprocess.run([args.doxygen, "-"], input=config, text=True,
                         capture_output=True, cwd=out)
    problems = [line for line in run.stderr.splitlines() if line.strip()]
    if run.returncode != 0 and not problems:
        problems.append("doxygen exited with status %d" % run.returncode)

    xml_dir = os.path.join(out, "xml")
    documented_files = set()
    try:
        index = ET.parse(os.path.join(xml_dir, "index.xml")).getroot()
    except (OSError, ET.ParseError) as e:
        problems.append("no Doxygen XML output: %s" % e)
        return problems
    for comp in index.findall("compound"):
        root = ET.parse(os.path.join(xml_dir, comp.get("refid") + ".xml")).getroot()
        for cdef in root.findall("compounddef"):
            kind = cdef.get("kind")
            name = text_of(cdef.find("compoundname"))
            loc = cdef.find("location")
            if kind == "file" and loc is not None:
                path = os.path.abspath(loc.get("file"))
                if described(cdef):
                    documented_files.add(path)
            if kind not in ("file", "struct", "union"):
                continue
            # The XML lists undocumented members too: every one must have a
            # description (functions, macros, typedefs, enums and their
            # values, variables, struct fields).
            for m in cdef.iter("memberdef"):
                mloc = m.find("location")
                where = "%s:%s" % (mloc.get("file"), mloc.get("line")) if mloc is not None else name
                mname = text_of(m.find("name"))
                if not described(m):
                    problems.append("%s: warning: %s %s of %s is not documented"
                                    % (where, m.get("kind"), mname, name))
                for value in m.findall("enumvalue"):
                    if not described(value):
                        problems.append("%s: warning: enum value %s of %s is not documented"
                                        % (where, text_of(value.find("name")), mname))
    for h in headers:
        if h not in documented_files:
            problems.append("%s:1: warning: no /** @file */ comment: Doxygen skips every "
                            "function, type and macro of this header" % h)
    # Doxygen's warnings and the walk above may name the same member twice.
    return list(dict.fromkeys(problems))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--doxygen", default="doxygen")
    p.add_argument("--doxyfile", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--html", action="store_true", help="also write the HTML reference")
    p.add_argument("--expect-fail", nargs="+", metavar="TEXT", default=None)
    p.add_argument("headers", nargs="+")
    args = p.parse_args()
    problems = check(args)
    return verdict("api_docs", problems, args.expect_fail,
                   "%d gap(s) in the API reference of %s" % (len(problems), " ".join(args.headers)),
                   "every public symbol of %d header(s) is documented" % len(args.headers),
                   "the check fails on the probe headers as it should")

if __name__ == "__main__":
    sys.exit(main())
