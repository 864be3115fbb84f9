"""Quality control of a lip-synced render: is the mouth saying the dub? (issue 16).

``dlib_mouth`` measures mouth opening with a landmarker the renderer does not use;
``report`` turns it, the dub's audio and the source into a per-track QC report with a
``needs_review`` flag.
"""
