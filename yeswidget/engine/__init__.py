"""The engine room: the YES bounds in memory (:mod:`.bounds`) and streamed (:mod:`.stream`), the
collectives (:mod:`.distributed`), the cost model (:mod:`.cost`) and the only reader of a model's
layers (:mod:`.capture`). torch only: no UI, no monitor.
"""
