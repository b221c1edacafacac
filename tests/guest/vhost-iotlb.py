#!/usr/bin/env python3
"""Read QEMU's vhost IOTLB trace (log backend) of one vhost-user guest run.

    vhost-iotlb.py TRACE

TRACE holds the lines of the trace events vhost_dev_start, vhost_dev_stop,
vhost_backend_iotlb_update and vhost_backend_iotlb_invalidate
(patches/qemu/0002).  Each vhost device (one per NIC) is followed from
start to stop with a model of the backend's IOTLB: an UPDATE adds its
range, an INVALIDATE removes whatever it covers.  Prints key=value lines:

    updates=N invalidates=M update_bytes=B     totals over the run
    first_stop_dev=PTR                         the NIC the guest unbound
    stop_cached_ranges=R stop_cached_bytes=B   what that device's backend
                                               still had cached at its stop
    cached_ranges=R invalidated_ranges=I       ranges it cached while it
                                               ran, and those invalidated
"""
import re
import sys

EV = re.compile(r'(vhost_dev_start|vhost_dev_stop|vhost_backend_iotlb_update|'
                r'vhost_backend_iotlb_invalidate) (0x[0-9a-f]+|\(nil\))(.*)$')
NUM = re.compile(r'(iova|size) (0x[0-9a-f]+)')


def remove(ranges, lo, hi):
    """ranges minus [lo, hi)"""
    out = []
    for a, b in ranges:
        if b <= lo or a >= hi:
            out.append((a, b))
            continue
        if a < lo:
            out.append((a, lo))
        if b > hi:
            out.append((hi, b))
    return out


def main():
    updates = invalidates = update_bytes = 0
    cache = {}          # dev -> live cached ranges
    cached = {}         # dev -> number of UPDATE ranges while running
    invalidated = {}    # dev -> UPDATE ranges fully gone before the stop
    pending = {}        # dev -> list of UPDATE ranges (for the count above)
    first_stop = None
    stop_cached = None
    with open(sys.argv[1], errors='replace') as f:
        for line in f:
            m = EV.search(line)
            if not m:
                continue
            ev, dev, rest = m.groups()
            nums = dict((k, int(v, 16)) for k, v in NUM.findall(rest))
            if ev == 'vhost_backend_iotlb_update':
                updates += 1
                update_bytes += nums['size']
                lo, hi = nums['iova'], nums['iova'] + nums['size']
                cache.setdefault(dev, [])
                cache[dev] = remove(cache[dev], lo, hi) + [(lo, hi)]
                cached[dev] = cached.get(dev, 0) + 1
                pending.setdefault(dev, []).append((lo, hi))
            elif ev == 'vhost_backend_iotlb_invalidate':
                invalidates += 1
                lo, hi = nums['iova'], nums['iova'] + nums['size']
                cache[dev] = remove(cache.get(dev, []), lo, hi)
                keep = []
                for r in pending.get(dev, []):
                    left = remove([r], lo, hi)
                    if left:
                        keep.extend(left)
                    else:
                        invalidated[dev] = invalidated.get(dev, 0) + 1
                pending[dev] = keep
            elif ev == 'vhost_dev_stop' and first_stop is None:
                first_stop = dev
                stop_cached = list(cache.get(dev, []))
    print('updates=%d invalidates=%d update_bytes=%d'
          % (updates, invalidates, update_bytes))
    if first_stop is None:
        print('first_stop_dev=none')
        return
    print('first_stop_dev=%s' % first_stop)
    print('stop_cached_ranges=%d stop_cached_bytes=%d'
          % (len(stop_cached), sum(b - a for a, b in stop_cached)))
    print('cached_ranges=%d invalidated_ranges=%d'
          % (cached.get(first_stop, 0), invalidated.get(first_stop, 0)))
    for a, b in stop_cached[:8]:
        print('stop_cached 0x%x+0x%x' % (a, b - a))


main()
