"""The engine room: the YES bounds in memory (:mod:`.bounds`) and streamed (:mod:`.stream`), the
last layer in the user's loss (:mod:`.losses` in memory, :mod:`.summed_loss` from sums), the
collectives (:mod:`.distributed`), the cost model (:mod:`.cost`) and the only reader of a model's
layers (:mod:`.capture`). torch only: no UI, no monitor.
"""
