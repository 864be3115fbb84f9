"""The studio application: settings, render orchestration, provenance, CLI and UI."""

import os as _os
import warnings as _warnings

# mediapipe's C++ graph logs setup chatter to stderr (TF Lite delegates, feedback tensors);
# an operator's terminal should show the studio's own messages. Explicit settings win.
_os.environ.setdefault("GLOG_minloglevel", "2")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated")

__version__ = "0.1.0"
