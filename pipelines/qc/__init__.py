"""Quality control of a lip-synced render: is the mouth saying the dub? (issue 16).

``dlib_mouth`` measures mouth opening with a landmarker the renderer does not use;
``report`` turns it, the dub's drive and the source into a per-track QC report with a
``needs_review`` flag (thresholds and how they were chosen: ``report.DEFAULT_THRESHOLDS``);
``files`` runs it on media files (``studio qc``) or on a render whose drive is at hand.
"""
