"""Rep-facing surfaces: signed links, the view-model every surface renders, CRM embeds.

HTTP routes live in :mod:`stagelink.web` (``pages``, ``card``, ``canvas``, ``push``); this
package holds what they share and what needs no HTTP: signing and reading links
(:mod:`.links`), building an opportunity's view (:mod:`.views`) and verifying CRM-signed
contexts (:mod:`.canvas`).
"""
