#!/usr/bin/env python3
"""Counts the checks in one test suite's output (read from stdin).

Prints "PASSED FAILED SKIPPED" on the first line, then one line
"NAME<TAB>REASON" per skipped check. The line formats are the ones
documented at the top of scripts/netns-lib.sh:

  PASS: what                      a check passed
  FAIL: what                      a check failed
  SKIP: what: reason              a check was not run, and why
  ok N - what / not ok N - what   TAP (N optional)
  ok N - what # SKIP reason       TAP skip (no reason: the description is)

A cmocka binary is counted by its own summary ("[  PASSED  ] n test(s).",
"[  FAILED  ] n test(s), listed below:", "[  SKIPPED ] n test(s), listed
below:"); its SKIP lines give the reasons for the tests cmocka lists as
skipped, and a skipped test without one gets "no reason given".
"""
import re
import sys

# an optional "[script] " prefix, as scripts/netns-lib.sh's nl_log writes
PREFIX = r"^(?:\[[^\]]*\] )?"
TAP = re.compile(r"^(not )?ok\b(?:\s+\d+)?(?:\s*-)?\s*(.*)$")
TAP_SKIP = re.compile(r"^(.*?)\s*#\s*SKIP\b:?\s*(.*)$", re.IGNORECASE)
WORD = re.compile(PREFIX + r"(PASS|FAIL|SKIP): ?(.*)$")
CMOCKA_SUM = re.compile(r"^\[  (PASSED|FAILED|SKIPPED) +\] (\d+) test\(s\)")
CMOCKA_NAME = re.compile(r"^\[  (SKIPPED) \] (\S+)\s*$")


def split_skip(text):
    """'name: reason' -> (name, reason); a bare reason names itself."""
    name, sep, reason = text.partition(": ")
    if not sep:
        return text.strip(), text.strip()
    return name.strip(), reason.strip()


def main():
    lines = [l.rstrip("\n") for l in sys.stdin]
    counts = {"PASS": 0, "FAIL": 0}
    skips = []
    cmocka = {"PASSED": 0, "FAILED": 0, "SKIPPED": 0}
    cmocka_seen = False
    cmocka_skipped = []
    for line in lines:
        m = CMOCKA_SUM.match(line)
        if m:
            cmocka_seen = True
            cmocka[m.group(1)] += int(m.group(2))
            continue
        m = CMOCKA_NAME.match(line)
        if m:
            if m.group(2) not in cmocka_skipped:
                cmocka_skipped.append(m.group(2))
            continue
        m = WORD.match(line)
        if m:
            if m.group(1) == "SKIP":
                skips.append(split_skip(m.group(2)))
            else:
                counts[m.group(1)] += 1
            continue
        m = TAP.match(line)
        if m:
            s = TAP_SKIP.match(m.group(2))
            if s and not m.group(1):
                skips.append((s.group(1), s.group(2) or s.group(1)))
            else:
                counts["FAIL" if m.group(1) else "PASS"] += 1
    if cmocka_seen:
        counts["PASS"] += cmocka["PASSED"]
        counts["FAIL"] += cmocka["FAILED"]
        reasons = {name: reason for name, reason in skips}
        skips = [(n, reasons.get(n, "no reason given")) for n in cmocka_skipped]
        skips += [("cmocka", "no reason given")] * (cmocka["SKIPPED"] - len(skips))
    print(counts["PASS"], counts["FAIL"], len(skips))
    for name, reason in skips:
        print(f"{name}\t{reason}")


if __name__ == "__main__":
    main()
