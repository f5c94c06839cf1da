"""Pictures a person would rather look at than read, drawn with Pillow alone (no
matplotlib, so curation stays a light install): contact sheets (:mod:`.sheets`), the
coverage map (:mod:`.maps`), evaluation charts (:mod:`.charts`).
"""
