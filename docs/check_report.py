"""The verdict both doc checkers (api_docs.py, check_snippets.py) give.

A checker collects problems; in its normal run any problem fails it. Its
"can fail" run (--expect-fail TEXT...) is the proof that it can: there it
passes only if it found problems and named every expected TEXT.
"""


def verdict(name, problems, expect_fail, failed_summary, passed_summary, failed_as_it_should):
    """Print the report and return the exit status."""
    report = "\n".join(problems)
    if expect_fail is None:
        if problems:
            print(report)
            print("%s: %s" % (name, failed_summary))
            return 1
        print("%s: %s" % (name, passed_summary))
        return 0
    print(report)
    missing = [t for t in expect_fail if t not in report]
    if not problems or missing:
        print("%s: the check should have failed naming: %s; not named: %s"
              % (name, ", ".join(expect_fail), ", ".join(missing) or "(all named, but it passed)"))
        return 1
    print("%s: %s" % (name, failed_as_it_should))
    return 0
