"""The Gradio studio: handlers (role-checked, testable without a browser), uploads, layout."""
