"""The view room: the cloud picture as a numpy scene (:mod:`.scene`) and its matplotlib pictures (:mod:`.render`).

Nothing here imports a widget library; :mod:`.render` imports matplotlib only.
"""
