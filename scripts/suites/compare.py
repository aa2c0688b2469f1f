#!/usr/bin/env python3
"""Compares JUnit XML results of the same suite run natively and under `dune run`.

    compare.py NAME NATIVE.xml DUNE.xml [--markdown]

Prints the counts of each run and every test that passed natively but not in Dune
mode; exits 1 if there is one (or if a run produced no results at all).
"""
import sys
import xml.etree.ElementTree as ET


def results(path):
    """{test id: 'pass' | 'fail' | 'error' | 'skip'} from a JUnit XML file."""
    out = {}
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        print(f"{path}: no results ({e})")
        return None
    for tc in root.iter('testcase'):
        if not tc.get('name'):
            continue  # regrtest's placeholder for a module that did not run
        tid = f"{tc.get('classname', '')}.{tc.get('name', '')}"
        status = 'pass'
        for child in tc:
            if child.tag in ('failure', 'error', 'skipped'):
                status = {'failure': 'fail', 'error': 'error', 'skipped': 'skip'}[child.tag]
                break
        out[tid] = status
    return out


def counts(r):
    c = {'pass': 0, 'fail': 0, 'error': 0, 'skip': 0}
    for s in r.values():
        c[s] += 1
    return c


def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    name, native_path, dune_path = args
    native, dune = results(native_path), results(dune_path)
    if not native or not dune:
        print(f"{name}: a run produced no results")
        return 1
    cn, cd = counts(native), counts(dune)
    print(f"{name}: native  {len(native):5d} tests: {cn['pass']} passed, {cn['fail']} failed, {cn['error']} errors, {cn['skip']} skipped")
    print(f"{name}: dune    {len(dune):5d} tests: {cd['pass']} passed, {cd['fail']} failed, {cd['error']} errors, {cd['skip']} skipped")
    lost = sorted(t for t, s in native.items() if s == 'pass' and dune.get(t) != 'pass')
    for t in lost:
        print(f"{name}: REGRESSION {t}: passed natively, {dune.get(t, 'missing')} in Dune mode")
    gained = sorted(t for t, s in dune.items() if s == 'pass' and native.get(t) != 'pass')
    for t in gained:
        print(f"{name}: (passes only in Dune mode: {t}, natively {native.get(t, 'missing')})")
    print(f"{name}: {cn['pass']} passed natively; {cn['pass'] - len(lost)} of them pass in Dune mode; {len(lost)} regressions")
    return 1 if lost else 0


if __name__ == '__main__':
    sys.exit(main())
