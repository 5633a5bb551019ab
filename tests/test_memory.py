

def test_exempt_from_gc_freezes_and_still_frees_dropped_cycles():
    import gc
    import weakref

    from eligibility.memory import exempt_from_gc

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector can free it
    ref = weakref.ref(a)
    try:
        exempt_from_gc()
        assert gc.get_freeze_count() > 0
        del a, b
        gc.collect()
        assert ref() is not None  # frozen: a full collection does not reach it
        exempt_from_gc()  # the next load unfreezes, collects, freezes again
        assert ref() is None
    finally:
        gc.unfreeze()
