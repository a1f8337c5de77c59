/**
 * Provider price entity: the Stripe Price of a renewing offer in one currency, named by
 * its lookup key (core/rules/renewal.ts `priceLookupKey`: offer, currency, amount,
 * interval), so an order reads one item instead of asking Stripe. A changed offer price
 * names another key, and so another Price; the old item stays for subscriptions that
 * still bill it. One partition per key.
 */
import { SERVICE, pk, sk } from "./keys.js";

/** ElectroDB schema of a renewing offer's provider price. */
export const providerPriceSchema = {
  model: { entity: "providerPrice", version: "1", service: SERVICE },
  attributes: {
    lookupKey: { type: "string", required: true },
    offerId: { type: "string", required: true },
    /** The provider's product id (`prod_...` or ours, `uc-<offerId>`). */
    productId: { type: "string", required: true },
    /** The provider's price id (`price_...`). */
    priceId: { type: "string", required: true },
    createdAt: { type: "string", required: true },
  },
  indexes: {
    byKey: { pk: pk(["lookupKey"]), sk: sk([]) },
  },
} as const;
