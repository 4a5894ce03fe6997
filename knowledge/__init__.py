"""The shop's own data as the bot understands it: catalog, FAQ, order ids, and their search.

Everything here is built from one shop's files and orders, never from the demo: a product is
found by how customers name it (:mod:`knowledge.products`), an order id by the shape of the
shop's own ids (:mod:`knowledge.order_ids`), an FAQ answer by what the shop wrote
(:mod:`knowledge.faq_search`). :class:`knowledge.bundle.ShopKnowledge` holds one consistent
set of them, swapped as a whole when the shop's data changes.
"""
