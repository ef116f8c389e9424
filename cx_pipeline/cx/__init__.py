"""Customer-experience analytics: CLV models (``clv``) and the self-contained CX report (``report``, drawn
with the SVG charts of ``charts``, from the data ``report_data`` reads)."""
