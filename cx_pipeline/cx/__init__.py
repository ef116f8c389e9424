"""Customer-experience analytics: CLV models (``clv``) and the self-contained CX report (``report``)."""
