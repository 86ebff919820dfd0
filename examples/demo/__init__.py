"""The demo behind ``make demo``: a page with tus, flow.js and resumable.js uploaders.

``examples/demo.ini`` serves :func:`examples.demo.app.main` behind tus_filter.
"""
