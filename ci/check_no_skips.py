#!/usr/bin/env python3
"""Fail unless a pytest JUnit report has tests, no failures and no skips.

The suite skips the emulator and browser tests where gcloud, Java or Chromium is
missing; in CI that would hide them, so a skip is an error there.

    check_no_skips.py test-artifacts/junit.xml
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def summary(path: str) -> tuple[int, int, int, list[str]]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = sum(int(s.get("tests", 0)) for s in suites)
    bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = [
        f"{case.get('classname')}::{case.get('name')}: {case.find('skipped').get('message', '')}"
        for case in root.iter("testcase")
        if case.find("skipped") is not None
    ]
    return tests, bad, len(skipped), skipped


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    tests, bad, skipped, which = summary(argv[1])
    print(f"{tests} tests, {bad} failed, {skipped} skipped")
    for line in which:
        print(f"skipped: {line}", file=sys.stderr)
    return 0 if tests > 0 and bad == 0 and skipped == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
