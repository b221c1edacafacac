#!/usr/bin/env python3
"""Minimal QMP client for the test scripts: send commands, print replies.

usage: qmp.py SOCKET [--when FILE PATTERN] COMMAND [JSON-ARGUMENTS]...
With --when, connect first, then send the commands the moment PATTERN
appears in FILE (a console log), so that they land within milliseconds.
Exits non-zero if a command returns an error.
"""
import json
import socket
import sys
import time


def connect(path, timeout=30):
    deadline = time.time() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            return s
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def wait_for_pattern(path, pattern, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(path, errors='replace') as log:
                if pattern in log.read():
                    return True
        except OSError:
            pass
        time.sleep(0.005)
    return False


def main():
    sock = connect(sys.argv[1])
    f = sock.makefile('rw')
    f.readline()
    args = sys.argv[2:]
    if args[:1] == ['--when']:
        path, pattern, args = args[1], args[2], args[3:]
        f.write(json.dumps({'execute': 'qmp_capabilities'}) + '\n')
        f.flush()
        f.readline()
        if not wait_for_pattern(path, pattern):
            print('pattern %r never appeared in %s' % (pattern, path))
            return 1
    cmds = [] if sys.argv[2:3] == ['--when'] else [('qmp_capabilities', {})]
    i = 0
    while i < len(args):
        cmd, arg = args[i], {}
        if i + 1 < len(args) and args[i + 1].startswith('{'):
            arg = json.loads(args[i + 1])
            i += 1
        cmds.append((cmd, arg))
        i += 1
    rc = 0
    for cmd, arg in cmds:
        f.write(json.dumps({'execute': cmd, 'arguments': arg}) + '\n')
        f.flush()
        while True:
            line = f.readline()
            if not line:
                return rc
            reply = json.loads(line)
            if 'return' in reply or 'error' in reply:
                break
        if cmd != 'qmp_capabilities':
            print(json.dumps(reply))
        if 'error' in reply:
            rc = 1
    return rc


if __name__ == '__main__':
    sys.exit(main())
