#!/usr/bin/env python3
"""Write the seed inputs of the device fuzz target (virtio-iommu-fuzz).

    tests/fuzz/gen-device-seeds.py [DIR]   (default tests/fuzz/corpus/device)

Each seed is a small program in the target's encoding (see the comments of
tests/qtest/fuzz/virtio_iommu_fuzz.c and docs/fuzzing.md) that gets the
device somewhere interesting: domains attached, mappings made, DMA through
them, faults reported, limits reached, malformed chains, resets.  libFuzzer
mutates from there.  Seeds are named seed-NAME; reproducers of fixed bugs
sit next to them as regress-NAME.
"""
import os
import struct
import sys

(OP_START, OP_REQ, OP_KICK, OP_EVENTS, OP_DMA, OP_CONFIG, OP_STATUS,
 OP_COMMON, OP_CLOCK, OP_EDU_CMD, OP_SYS_RESET, OP_STORM,
 OP_DMA_STORM, OP_BUS_NUMBER, OP_REPLAY) = range(15)

ATTACH, DETACH, MAP, UNMAP, PROBE, UNKNOWN, RAW, ATTACH_BYPASS = range(8)
RESERVED = 0x08         # kind: reserved bytes not zero
WILD = 0x80             # kind: raw 64-bit start, end, phys follow

# endpoint selector bytes; PORT_EDU is the edu behind the root port (bus 1)
EDU1, EDU2, EDU3, EDU4, PORT_EDU = 0, 1, 4, 5, 6
BUS_2, BUS_0, BUS_FF, BUS_1 = 0, 1, 2, 3     # OP_BUS_NUMBER values
PORT_EDU_DMA = 4                             # its index for dma()
EDU3_DMA = 2                                 # the third edu's, for dma()
R, W, RW, MMIO = 1, 2, 3, 4                 # MAP flags

# layout byte
SHORT_READ, LONG_READ, HEAD_ONLY = 1, 2, 3
EXTRA_WRITE, TINY_WRITE, HUGE_WRITE = 1 << 2, 2 << 2, 3 << 2
CHUNK_READ, SPLIT_TAIL, CHUNK_BOTH = 1 << 4, 2 << 4, 3 << 4
INDIRECT = 0x40
DEFECT = 0x80

BYPASS_OFF = 36         # config offset of bypass
MSI_PAGE = 0xc001       # IOVA selector of 0xfee00000, the MSI window
SELF, NO_DEVICE, PORT, HOST_BRIDGE = 0xf0, 0xf1, 0xf5, 0xf6   # endpoints
CMD_MEM, CMD_MEM_MASTER = 0x2, 0x6      # edu PCI command values


def u8(v):
    return struct.pack('<B', v & 0xff)


def u16(v):
    return struct.pack('<H', v & 0xffff)


def u32(v):
    return struct.pack('<I', v & 0xffffffff)


def u64(v):
    return struct.pack('<Q', v & 0xffffffffffffffff)


def start(feat_clear=0, sizes=0, flags=0):
    return u8(OP_START) + u64(feat_clear) + u8(sizes) + u8(flags)


def req(kind, domain=1, ep=EDU1, flags=0, page=0, pages=1, phys_page=0,
        layout=0, wild=None, raw=None, defect=None):
    b = (u8(OP_REQ) + u8(kind) + u8(domain) + u8(ep) + u8(flags) +
         u16(page) + u8(pages - 1) + u16(phys_page) + u8(layout))
    if kind & WILD:
        b += u64(wild[0]) + u64(wild[1]) + u64(wild[2])
    if (kind & 7) == RAW:
        b += u8(len(raw)) + bytes(raw)
    if layout & DEFECT:
        b += u8(defect)
    return b


def kick(q=0):
    return u8(OP_KICK) + u8(q)


def events(n, size=0):
    return u8(OP_EVENTS) + u8(n - 1) + u8(size)


def dma(edu, write, page, off=0, count=64):
    return (u8(OP_DMA) + u8(edu) + u8(1 if write else 0) + u16(page) +
            u16(off) + u16(count - 1))


def config(off, val, width=0):
    return u8(OP_CONFIG) + u8(off) + u8(width) + u64(val)


def bus_number(v):
    return u8(OP_BUS_NUMBER) + u8(v)


def replay(ep):
    return u8(OP_REPLAY) + u8(ep)


def edu_cmd(edu, cmd):
    return u8(OP_EDU_CMD) + u8(edu) + u16(cmd)


def storm(n, seed, mix):
    return u8(OP_STORM) + u8(n - 1) + u32(seed) + u8(mix)


def dma_storm(n, seed):
    return u8(OP_DMA_STORM) + u8(n - 1) + u32(seed)


def seeds():
    s = {}
    # One domain, one mapping, DMA both ways through it, then a fault
    s['map-dma'] = (events(4) + req(ATTACH, 1, EDU1) +
                    req(MAP, 1, flags=RW, page=0, pages=4, phys_page=16) +
                    kick() + dma(EDU1, False, 0, 0x10, 512) +
                    dma(EDU1, True, 1, 0, 4096) +
                    dma(EDU1, True, 8) + kick(1))
    # Two domains, one edu each; unmap, detach, DMA faults and bypass
    s['two-domains'] = (events(8) + req(ATTACH, 1, EDU1) +
                        req(ATTACH, 2, EDU2) +
                        req(MAP, 1, flags=R, page=0, pages=2, phys_page=0) +
                        req(MAP, 2, flags=W, page=0, pages=2, phys_page=8) +
                        kick() + dma(EDU1, False, 0) + dma(EDU2, True, 1) +
                        dma(EDU1, True, 0) + dma(EDU2, False, 1) +
                        req(UNMAP, 1, page=0, pages=2) +
                        req(DETACH, 2, EDU2) + kick() +
                        dma(EDU1, False, 0) + dma(EDU2, True, 1))
    # Both edu in one domain, moved to another, re-attached
    s['shared-domain'] = (events(8) + req(ATTACH, 3, EDU1) +
                          req(ATTACH, 3, EDU2) +
                          req(MAP, 3, flags=RW, page=4, pages=8,
                              phys_page=32) + kick() +
                          dma(EDU2, True, 5, 0x100, 256) +
                          req(ATTACH, 4, EDU1) + kick() +
                          dma(EDU1, False, 5) + dma(EDU2, False, 5) +
                          req(ATTACH, 3, EDU2) + kick() +
                          dma(EDU2, False, 5))
    # Identity domain, then bypass off in config: DOMAIN faults
    s['bypass'] = (events(4) + req(ATTACH_BYPASS, 2, EDU1) + kick() +
                   dma(EDU1, True, 0x100) + config(BYPASS_OFF, 0) +
                   dma(EDU2, False, 0x10) + config(BYPASS_OFF, 1) +
                   dma(EDU2, False, 0x10) + req(MAP, 2, flags=RW) + kick())
    # Every request type, every layout
    b = events(2) + req(ATTACH, 1, EDU1)
    for layout in (0, SHORT_READ, LONG_READ, HEAD_ONLY, EXTRA_WRITE,
                   TINY_WRITE, CHUNK_READ, SPLIT_TAIL, CHUNK_BOTH,
                   INDIRECT, INDIRECT | CHUNK_BOTH):
        b += req(PROBE, ep=EDU2, layout=layout)
        b += req(MAP, 1, flags=RW, page=0x20, pages=2, layout=layout)
        b += req(UNMAP, 1, page=0x20, pages=2, layout=layout)
        b += kick()
    b += req(PROBE, ep=EDU1, flags=0x40, layout=EXTRA_WRITE) + kick()
    s['layouts'] = b
    # Reserved bytes, unknown types and flags, raw bytes, MMIO mapping
    s['malformed'] = (req(ATTACH | RESERVED, 1, EDU1) +
                      req(ATTACH, 1, EDU1, flags=2) +
                      req(UNMAP | RESERVED, 1) + req(UNKNOWN, 8) +
                      req(RAW, raw=[3, 0, 0, 0, 1]) +
                      req(MAP, 1, flags=RW | MMIO, phys_page=0xf001) +
                      req(MAP, 1, flags=0x10) +
                      req(MAP | WILD, 1, flags=RW,
                          wild=(0x1000, 0xfff, 0x2000000)) +
                      req(MAP | WILD, 1, flags=RW,
                          wild=(0, 2 ** 64 - 1, 0)) +
                      req(ATTACH, 0xf2, EDU1) + req(ATTACH, 1, 0xf0) +
                      req(DETACH, 1, 0xf4) + kick())
    # Limits: three domains, 64 mappings, eight pending faults
    b = (req(ATTACH, 1, EDU1) + req(ATTACH, 2, EDU2) +
         req(ATTACH, 3, EDU3) + req(ATTACH, 4, EDU4) + kick())
    for i in range(66):
        b += req(MAP, 1 + i % 2, flags=RW, page=2 * i, pages=1,
                 phys_page=i)
    b += kick() + dma_storm(16, 0x1234) + events(8) + kick(1)
    s['limits'] = b
    # Storms of requests and of DMA
    s['storm'] = (events(8) + storm(200, 0xdeadbeef, 0) +
                  dma_storm(32, 0xcafe) + storm(120, 0x1, 1) +
                  storm(60, 0x77, 2) + dma_storm(32, 0xf00d) + kick(1))
    # Malformed chains: each defect once
    b = req(ATTACH, 1, EDU1) + kick()
    for d in range(8):
        b += req(MAP, 1, flags=RW, page=d, layout=DEFECT |
                 (INDIRECT if d in (4, 5) else 0), defect=d)
        b += kick()
        b += start()
    s['defects'] = b
    # Feature negotiation: no MAP_UNMAP, no PROBE, small queues
    s['features'] = (start(1 << 2 | 1 << 4, 0x2c) + req(ATTACH, 1, EDU1) +
                     req(MAP, 1, flags=RW) + req(PROBE) + kick() +
                     start(1 << 6, 5) + req(ATTACH_BYPASS, 1) + kick() +
                     start(0, 6) + req(MAP, 1, flags=RW) + kick())
    # Resets with live mappings, DMA in between
    s['resets'] = (events(4) + req(ATTACH, 1, EDU1) +
                   req(MAP, 1, flags=RW, pages=8) + kick() +
                   dma(EDU1, True, 2) + u8(OP_STATUS) + u8(0) +
                   dma(EDU1, True, 2) + start() + req(ATTACH, 1, EDU1) +
                   kick() + u8(OP_SYS_RESET) + start() +
                   dma(EDU1, False, 2) + u8(OP_COMMON) + u8(0x1c) +
                   u8(1) + u32(0) + kick())
    # A mapping onto the IOMMU's own registers, written by edu
    s['dma-registers'] = (events(4) + req(ATTACH, 1, EDU1) +
                          req(MAP, 1, flags=RW, page=0, pages=16,
                              phys_page=0xf001) +
                          req(MAP, 1, flags=RW, page=0x40, pages=1,
                              phys_page=0xf005) + kick() +
                          dma(EDU1, True, 0, 0, 4096) +
                          dma(EDU1, True, 0x40, 0, 256) + kick())
    # The edu behind the root port: attached as bus 1, renumbered to bus 2
    # while attached (its domain follows it), detached by the ID it was
    # attached as, attached again by its new one; bus 0 collides with
    # the host bridge's ID
    s['port-renumber'] = (events(8) + req(ATTACH, 1, PORT_EDU) +
                          req(MAP, 1, flags=RW, page=0, pages=2,
                              phys_page=4) + kick() +
                          dma(PORT_EDU_DMA, False, 0) + bus_number(BUS_2) +
                          dma(PORT_EDU_DMA, True, 1) +
                          req(ATTACH, 2, 0xf7) + kick() +
                          req(DETACH, 1, PORT_EDU) + kick() +
                          dma(PORT_EDU_DMA, False, 0) +
                          req(ATTACH, 2, 0xf7) + kick() +
                          dma(PORT_EDU_DMA, False, 0) +
                          bus_number(BUS_0) + req(ATTACH, 3, 0xf6) + kick() +
                          dma(PORT_EDU_DMA, True, 0) + config(BYPASS_OFF, 0) +
                          bus_number(BUS_FF) + dma(PORT_EDU_DMA, True, 0) +
                          u8(OP_SYS_RESET) + start() +
                          req(ATTACH, 1, PORT_EDU) + kick() + kick(1))
    # Notifier events: mappings of every shape, a domain shared and left,
    # replays (the device records its notifiers' events)
    s['notify'] = (req(ATTACH, 1, EDU1) + req(ATTACH, 1, EDU2) +
                   req(MAP, 1, flags=RW, page=0, pages=3, phys_page=1) +
                   req(MAP, 1, flags=R, page=0x10, pages=16, phys_page=16) +
                   req(MAP, 1, flags=RW | MMIO, page=0x40, pages=1,
                       phys_page=0xf001) +
                   req(MAP | WILD, 1, flags=RW,
                       wild=(1 << 32, (1 << 32) + (0xc0 << 21) - 1, 0)) +
                   kick() + replay(EDU1) + replay(EDU2) +
                   req(ATTACH, 2, EDU2) + kick() + replay(EDU2) +
                   req(UNMAP, 1, flags=0x80) + req(UNMAP, 1, pages=64) +
                   kick() + replay(EDU1) +
                   req(DETACH, 1, EDU1) + kick() + replay(0xf1))
    # What the reference model predicts for DMA: a read across a RW and a
    # read-only mapping, a write cut short by the read-only one, two IOVAs
    # on one page, a write-only page read, unaligned blocked pieces, the
    # MSI window, bus master off, a bypass domain, bypass off for the
    # unattached, the edu behind the port faulting under its new number
    s['model-dma'] = (events(8) + req(ATTACH, 1, EDU1) +
                      req(MAP, 1, flags=RW, page=0, pages=2, phys_page=10) +
                      req(MAP, 1, flags=R, page=2, pages=1, phys_page=20) +
                      req(MAP, 1, flags=W, page=3, pages=1, phys_page=10) +
                      kick() + dma(EDU1, False, 1, 0xf00, 0x300) +
                      dma(EDU1, True, 1, 0xf80, 0x200) + kick(1) +
                      events(8) + dma(EDU1, True, 3, 0x10, 0x100) +
                      dma(EDU1, False, 3, 0, 16) +
                      dma(EDU1, False, 0, 0, 4096) +
                      dma(EDU1, True, 4, 3, 9) +
                      dma(EDU1, True, MSI_PAGE, 0, 64) +
                      edu_cmd(EDU1, CMD_MEM) + dma(EDU1, True, 0, 0, 64) +
                      dma(EDU1, False, 0, 0, 64) +
                      edu_cmd(EDU1, CMD_MEM_MASTER) +
                      dma(EDU1, True, 1, 0, 256) + events(8) +
                      req(ATTACH_BYPASS, 2, EDU2) + kick() +
                      dma(EDU2, False, 0x30, 0, 4096) +
                      dma(EDU2, True, 0x120, 0x10, 256) +
                      dma(EDU3_DMA, True, 0x121, 0, 128) +
                      config(BYPASS_OFF, 0) +
                      dma(EDU3_DMA, False, 0x10, 1, 7) +
                      bus_number(BUS_2) +
                      dma(PORT_EDU_DMA, True, 0x10, 0, 8) + kick(1))
    # What it predicts for requests: no BYPASS_CONFIG (ATTACH_F_BYPASS
    # refused, config bypass ignored), max-domains reached, an endpoint
    # re-attached, MAP over the MSI window and an MMIO mapping, UNMAP that
    # would split, DETACH from the wrong domain, PROBE of the IOMMU
    # itself, of nothing and of the root port, the host bridge attached;
    # config bypass written unaligned, too wide and with 2
    s['model-requests'] = (start(1 << 6) + req(ATTACH_BYPASS, 1, EDU1) +
                           kick() + config(BYPASS_OFF, 0) +
                           dma(EDU1, True, 0x130, 0, 64) +
                           start() + events(8) +
                           req(ATTACH, 1, EDU1) + req(ATTACH, 1, EDU2) +
                           req(ATTACH, 2, EDU3) + req(ATTACH, 3, EDU4) +
                           req(ATTACH, 4, PORT_EDU) + req(ATTACH, 1, EDU1) +
                           req(MAP, 1, flags=RW, page=MSI_PAGE) +
                           req(MAP, 1, flags=RW | MMIO, page=0, pages=2) +
                           req(UNMAP, 1, page=1, pages=1) +
                           req(DETACH, 2, EDU1) + req(PROBE, ep=SELF) +
                           req(PROBE, ep=NO_DEVICE) + req(PROBE, ep=PORT) +
                           req(ATTACH, 3, HOST_BRIDGE) + kick() +
                           dma(EDU2, False, 0, 0, 64) +
                           config(33, 0x00000000, 2) +
                           dma(PORT_EDU_DMA, True, 0x20, 0, 16) +
                           config(32, 0x200000000, 3) +
                           config(35, 0x0100, 1) +
                           dma(PORT_EDU_DMA, True, 0x20, 0, 16) + kick(1))
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'corpus', 'device')
    os.makedirs(out, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(out, 'seed-' + name), 'wb') as f:
            f.write(data)
    print('%d seeds in %s' % (len(seeds()), out))


if __name__ == '__main__':
    main()
