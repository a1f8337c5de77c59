/**
 * core/rules/visibility.ts: which offers a user may see and buy (API.md `GET /offers`).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { groupsUnlockedBy, isLocked, isUnlockedFor, visibleOffers, type VisibilityOffer } from "../../../core/rules/visibility.js";

const PROPERTY = { numRuns: 400, seed: 0x0ff3_25ee } as const;

/** An active, regular, unkeyed usd offer of weight 0 without tags, unless told otherwise. */
function anOffer(offerId: string, overrides: Partial<VisibilityOffer> = {}): VisibilityOffer {
  return { offerId, active: true, unlockedBy: [], overridingKey: null, weight: 0, tags: [], prices: [{ currency: "usd" }], ...overrides };
}

const NOBODY = new Set<string>();

function visibleIds(offers: readonly VisibilityOffer[], unlockedGroups: ReadonlySet<string> = NOBODY, filters: { tags?: string[] | undefined; allTags?: boolean | undefined; currency?: string | undefined } = {}): string[] {
  return visibleOffers({ offers, unlockedGroups, ...filters }).map((offer) => offer.offerId);
}

describe("isLocked", () => {
  it("is false for an offer with an empty unlockedBy (a regular offer)", () => {
    expect(isLocked(anOffer("a"))).toBe(false);
  });

  it("is true for an offer with a non-empty unlockedBy", () => {
    expect(isLocked(anOffer("a", { unlockedBy: ["pro"] }))).toBe(true);
  });
});

describe("isUnlockedFor", () => {
  it("is true when one of the offer's unlocking groups holds an active paid grant", () => {
    expect(isUnlockedFor(anOffer("a", { unlockedBy: ["pro", "team"] }), new Set(["team"]))).toBe(true);
  });

  it("is false when none of them does", () => {
    expect(isUnlockedFor(anOffer("a", { unlockedBy: ["pro", "team"] }), new Set(["calls", "data"]))).toBe(false);
  });

  it("is false for a user with no unlocked groups", () => {
    expect(isUnlockedFor(anOffer("a", { unlockedBy: ["pro"] }), NOBODY)).toBe(false);
  });
});

describe("visibleOffers: candidates", () => {
  it("shows active regular offers to an anonymous visitor", () => {
    expect(visibleIds([anOffer("b"), anOffer("a")])).toEqual(["a", "b"]);
  });

  it("shows regular offers to a user with no unlocked groups (the original crashed)", () => {
    expect(visibleIds([anOffer("a"), anOffer("vip", { unlockedBy: ["pro"] })], new Set())).toEqual(["a"]);
  });

  it("hides inactive offers, regular or unlocked", () => {
    const offers = [anOffer("a", { active: false }), anOffer("b", { active: false, unlockedBy: ["pro"] }), anOffer("c")];
    expect(visibleIds(offers, new Set(["pro"]))).toEqual(["c"]);
  });

  it("hides a locked offer from a user who has not unlocked it", () => {
    expect(visibleIds([anOffer("vip", { unlockedBy: ["pro"] })], new Set(["calls"]))).toEqual([]);
  });

  it("shows a locked offer to a user holding a grant in any one of its unlocking groups", () => {
    const offers = [anOffer("vip", { unlockedBy: ["pro", "team"] })];
    expect(visibleIds(offers, new Set(["team"]))).toEqual(["vip"]);
    expect(visibleIds(offers, new Set(["pro"]))).toEqual(["vip"]);
  });

  it("never leaks a tagged locked offer to an anonymous visitor through the tag filter", () => {
    const offers = [anOffer("vip", { unlockedBy: ["pro"], tags: ["monthly"] }), anOffer("basic", { tags: ["monthly"] })];
    expect(visibleIds(offers, NOBODY, { tags: ["monthly"] })).toEqual(["basic"]);
    expect(visibleIds(offers, NOBODY, { tags: ["monthly"], allTags: true })).toEqual(["basic"]);
  });

  it("returns the very offer objects it was given", () => {
    const offer = anOffer("a");
    expect(visibleOffers({ offers: [offer], unlockedGroups: NOBODY })[0]).toBe(offer);
  });
});

describe("visibleOffers: overridingKey", () => {
  it("keeps only the highest weight among offers sharing a key", () => {
    const offers = [anOffer("a", { overridingKey: "plan", weight: 1 }), anOffer("b", { overridingKey: "plan", weight: 5 }), anOffer("c", { overridingKey: "plan", weight: 3 })];
    expect(visibleIds(offers)).toEqual(["b"]);
  });

  it("lets a heavier regular offer beat a lighter unlocked one", () => {
    const offers = [anOffer("regular", { overridingKey: "plan", weight: 2 }), anOffer("unlocked", { overridingKey: "plan", weight: 1, unlockedBy: ["pro"] })];
    expect(visibleIds(offers, new Set(["pro"]))).toEqual(["regular"]);
  });

  it("lets a heavier unlocked offer replace a regular one", () => {
    const offers = [anOffer("regular", { overridingKey: "plan", weight: 1 }), anOffer("unlocked", { overridingKey: "plan", weight: 2, unlockedBy: ["pro"] })];
    expect(visibleIds(offers, new Set(["pro"]))).toEqual(["unlocked"]);
    expect(visibleIds(offers)).toEqual(["regular"]);
  });

  it("on equal weight, an unlocked offer beats a regular one, whatever their ids and order", () => {
    const regular = anOffer("a-regular", { overridingKey: "plan", weight: 4 });
    const unlocked = anOffer("z-unlocked", { overridingKey: "plan", weight: 4, unlockedBy: ["pro"] });
    expect(visibleIds([regular, unlocked], new Set(["pro"]))).toEqual(["z-unlocked"]);
    expect(visibleIds([unlocked, regular], new Set(["pro"]))).toEqual(["z-unlocked"]);
  });

  it("on equal weight between two regular offers, the smaller offerId wins, whatever the order", () => {
    const a = anOffer("a", { overridingKey: "plan", weight: 4 });
    const b = anOffer("b", { overridingKey: "plan", weight: 4 });
    expect(visibleIds([b, a])).toEqual(["a"]);
    expect(visibleIds([a, b])).toEqual(["a"]);
  });

  it("on equal weight between two unlocked offers, the smaller offerId wins", () => {
    const x = anOffer("x", { overridingKey: "plan", unlockedBy: ["pro"] });
    const y = anOffer("y", { overridingKey: "plan", unlockedBy: ["team"] });
    expect(visibleIds([y, x], new Set(["pro", "team"]))).toEqual(["x"]);
  });

  it("does not let a locked offer the user has not unlocked replace anything", () => {
    const offers = [anOffer("regular", { overridingKey: "plan", weight: 0 }), anOffer("vip", { overridingKey: "plan", weight: 100, unlockedBy: ["pro"] })];
    expect(visibleIds(offers)).toEqual(["regular"]);
  });

  it("does not let an inactive offer replace anything", () => {
    const offers = [anOffer("live", { overridingKey: "plan", weight: 0 }), anOffer("retired", { overridingKey: "plan", weight: 100, active: false })];
    expect(visibleIds(offers)).toEqual(["live"]);
  });

  it("never makes offers without an overridingKey collide (null, undefined or empty)", () => {
    const offers = [
      anOffer("a", { overridingKey: null, weight: 9 }),
      anOffer("b", { overridingKey: undefined }),
      anOffer("c", { overridingKey: "", weight: 2 }),
      anOffer("d", { overridingKey: null }),
      anOffer("e", { overridingKey: undefined, weight: 5 }),
      anOffer("f", { overridingKey: "" }),
    ];
    expect(visibleIds(offers)).toEqual(["a", "b", "c", "d", "e", "f"]);
  });

  it("replaces only within a key: different keys both stay", () => {
    const offers = [anOffer("a", { overridingKey: "k1", weight: 1 }), anOffer("b", { overridingKey: "k2", weight: 9 })];
    expect(visibleIds(offers)).toEqual(["a", "b"]);
  });

  it("shows an unlocked offer that overrides nothing next to the regular ones", () => {
    const offers = [anOffer("basic"), anOffer("vip", { overridingKey: "vip-only", unlockedBy: ["pro"] })];
    expect(visibleIds(offers, new Set(["pro"]))).toEqual(["basic", "vip"]);
  });
});

describe("visibleOffers: tags", () => {
  const offers = [anOffer("a", { tags: ["calls", "monthly"] }), anOffer("b", { tags: ["calls"] }), anOffer("c", { tags: ["data"] }), anOffer("d")];

  it("keeps offers carrying any of the tags", () => {
    expect(visibleIds(offers, NOBODY, { tags: ["monthly", "data"] })).toEqual(["a", "c"]);
  });

  it("with allTags keeps only offers carrying every tag", () => {
    expect(visibleIds(offers, NOBODY, { tags: ["calls", "monthly"], allTags: true })).toEqual(["a"]);
  });

  it("an empty tag list filters nothing, with or without allTags", () => {
    expect(visibleIds(offers, NOBODY, { tags: [] })).toEqual(["a", "b", "c", "d"]);
    expect(visibleIds(offers, NOBODY, { tags: [], allTags: true })).toEqual(["a", "b", "c", "d"]);
  });

  it("a tag nobody carries shows nothing", () => {
    expect(visibleIds(offers, NOBODY, { tags: ["none"] })).toEqual([]);
  });

  it("applies the tags after the replacement: a winner without the tag hides the key", () => {
    const keyed = [anOffer("loser", { overridingKey: "plan", weight: 1, tags: ["promo"] }), anOffer("winner", { overridingKey: "plan", weight: 2 })];
    expect(visibleIds(keyed, NOBODY, { tags: ["promo"] })).toEqual([]);
  });
});

describe("visibleOffers: currency", () => {
  const offers = [anOffer("usd-only"), anOffer("both", { prices: [{ currency: "usd" }, { currency: "eur" }] }), anOffer("eur-only", { prices: [{ currency: "eur" }] }), anOffer("no-price", { prices: [] })];

  it("keeps only offers with a price in the currency asked", () => {
    expect(visibleIds(offers, NOBODY, { currency: "eur" })).toEqual(["both", "eur-only"]);
  });

  it("filters nothing without a currency", () => {
    expect(visibleIds(offers)).toEqual(["both", "eur-only", "no-price", "usd-only"]);
  });

  it("applies the currency after the replacement", () => {
    const keyed = [anOffer("eur-loser", { overridingKey: "plan", prices: [{ currency: "eur" }] }), anOffer("usd-winner", { overridingKey: "plan", weight: 1 })];
    expect(visibleIds(keyed, NOBODY, { currency: "eur" })).toEqual([]);
  });
});

describe("visibleOffers: order", () => {
  it("sorts the result by offerId, whatever the order given", () => {
    expect(visibleIds([anOffer("m"), anOffer("b", { overridingKey: "k" }), anOffer("x"), anOffer("a")])).toEqual(["a", "b", "m", "x"]);
  });
});

// --- Properties over random catalogs ----------------------------------------------------------

const GROUPS = ["pro", "team", "calls", "data"];
const KEYS = ["plan", "addon", "support"];
const TAGS = ["monthly", "yearly", "calls", "vip"];
const CURRENCIES = ["usd", "eur", "jpy"];

const aCatalog: fc.Arbitrary<VisibilityOffer[]> = fc.uniqueArray(
  fc.record({
    offerId: fc.stringMatching(/^[a-f0-9]{1,3}$/),
    active: fc.boolean(),
    unlockedBy: fc.oneof(fc.constant([] as string[]), fc.subarray(GROUPS, { minLength: 1 })),
    overridingKey: fc.oneof(fc.constantFrom(...KEYS), fc.constantFrom<string | null | undefined>(null, undefined, "")),
    weight: fc.integer({ min: 0, max: 3 }),
    tags: fc.subarray(TAGS),
    prices: fc.subarray(CURRENCIES).map((currencies) => currencies.map((currency) => ({ currency }))),
  }),
  { selector: (offer) => offer.offerId, maxLength: 25 },
);

const someUnlockedGroups = fc.subarray(GROUPS).map((groups) => new Set(groups));
const someFilters = fc.record({
  tags: fc.option(fc.subarray(TAGS), { nil: undefined }),
  allTags: fc.option(fc.boolean(), { nil: undefined }),
  currency: fc.option(fc.constantFrom(...CURRENCIES), { nil: undefined }),
});

function keyOf(offer: VisibilityOffer): string | null {
  return offer.overridingKey === undefined || offer.overridingKey === null || offer.overridingKey === "" ? null : offer.overridingKey;
}

function isCandidate(offer: VisibilityOffer, unlocked: ReadonlySet<string>): boolean {
  return offer.active && (offer.unlockedBy.length === 0 || offer.unlockedBy.some((group) => unlocked.has(group)));
}

/** Independent oracle of rule 2: the winner of each key among the candidates. */
function oracleWinners(offers: readonly VisibilityOffer[], unlocked: ReadonlySet<string>): Map<string, VisibilityOffer> {
  const winners = new Map<string, VisibilityOffer>();
  const rank = (offer: VisibilityOffer): [number, number, string] => [offer.weight, offer.unlockedBy.length > 0 ? 1 : 0, offer.offerId];
  for (const offer of offers.filter((candidate) => isCandidate(candidate, unlocked))) {
    const key = keyOf(offer);
    if (key === null) continue;
    const current = winners.get(key);
    if (!current) {
      winners.set(key, offer);
      continue;
    }
    const [w1, u1, id1] = rank(offer);
    const [w2, u2, id2] = rank(current);
    if (w1 > w2 || (w1 === w2 && (u1 > u2 || (u1 === u2 && id1 < id2)))) winners.set(key, offer);
  }
  return winners;
}

function passesFilters(offer: VisibilityOffer, filters: { tags?: string[] | undefined; allTags?: boolean | undefined; currency?: string | undefined }): boolean {
  const tags = filters.tags ?? [];
  const tagsOk = tags.length === 0 || (filters.allTags ? tags.every((tag) => offer.tags.includes(tag)) : tags.some((tag) => offer.tags.includes(tag)));
  const currencyOk = filters.currency === undefined || offer.prices.some((price) => price.currency === filters.currency);
  return tagsOk && currencyOk;
}

describe("visibleOffers: properties over random catalogs", () => {
  it("never shows two offers with the same overridingKey", () => {
    fc.assert(
      fc.property(aCatalog, someUnlockedGroups, someFilters, (offers, unlocked, filters) => {
        const keys = visibleOffers({ offers, unlockedGroups: unlocked, ...filters }).map(keyOf).filter((key) => key !== null);
        expect(new Set(keys).size).toBe(keys.length);
      }),
      PROPERTY,
    );
  });

  it("never shows an inactive offer, nor a locked offer the user has not unlocked", () => {
    fc.assert(
      fc.property(aCatalog, someUnlockedGroups, someFilters, (offers, unlocked, filters) => {
        for (const offer of visibleOffers({ offers, unlockedGroups: unlocked, ...filters })) {
          expect(offer.active).toBe(true);
          if (isLocked(offer)) expect(offer.unlockedBy.some((group) => unlocked.has(group))).toBe(true);
        }
      }),
      PROPERTY,
    );
  });

  it("always shows the highest-weight candidate of each key, and every unkeyed candidate", () => {
    fc.assert(
      fc.property(aCatalog, someUnlockedGroups, (offers, unlocked) => {
        const visible = visibleOffers({ offers, unlockedGroups: unlocked });
        const candidates = offers.filter((offer) => isCandidate(offer, unlocked));
        for (const key of new Set(candidates.map(keyOf))) {
          if (key === null) continue;
          const maxWeight = Math.max(...candidates.filter((offer) => keyOf(offer) === key).map((offer) => offer.weight));
          const shown = visible.filter((offer) => keyOf(offer) === key);
          expect(shown).toHaveLength(1);
          expect(shown[0]!.weight).toBe(maxWeight);
        }
        for (const offer of candidates.filter((candidate) => keyOf(candidate) === null)) expect(visible).toContain(offer);
      }),
      PROPERTY,
    );
  });

  it("is exactly the filtered winners and unkeyed candidates, sorted by offerId (checked against an oracle)", () => {
    fc.assert(
      fc.property(aCatalog, someUnlockedGroups, someFilters, (offers, unlocked, filters) => {
        const expected = [
          ...offers.filter((offer) => isCandidate(offer, unlocked) && keyOf(offer) === null),
          ...oracleWinners(offers, unlocked).values(),
        ]
          .filter((offer) => passesFilters(offer, filters))
          .map((offer) => offer.offerId)
          .sort();
        expect(visibleIds(offers, unlocked, filters)).toEqual(expected);
      }),
      PROPERTY,
    );
  });

  it("does not depend on the order in which the offers are given", () => {
    const aCatalogAndShuffle = aCatalog.chain((offers) =>
      fc.tuple(fc.constant(offers), fc.shuffledSubarray(offers, { minLength: offers.length, maxLength: offers.length })),
    );
    fc.assert(
      fc.property(aCatalogAndShuffle, someUnlockedGroups, someFilters, ([offers, shuffled], unlocked, filters) => {
        expect(shuffled).toHaveLength(offers.length);
        const a = visibleOffers({ offers, unlockedGroups: unlocked, ...filters });
        const b = visibleOffers({ offers: shuffled, unlockedGroups: unlocked, ...filters });
        expect(b).toEqual(a);
      }),
      PROPERTY,
    );
  });
});

describe("groupsUnlockedBy", () => {
  const at = new Date("2026-05-01T00:00:00.000Z");
  const state = (offerGroup: string, grants: Array<{ orderId?: string; starts: string; expires?: string }>) => ({
    userId: "u",
    offerGroup,
    balance: 0,
    debt: 0,
    version: 1,
    grants: grants.map((g, i) => ({ grantId: `g${i}`, tokens: 0, remaining: 0, ...g })),
  });

  it("unlocks the groups holding an unexpired grant from a paid order, started or not", () => {
    const groups = groupsUnlockedBy(
      [
        state("current", [{ orderId: "o1", starts: "2026-04-01T00:00:00.000Z", expires: "2026-06-01T00:00:00.000Z" }]),
        state("future", [{ orderId: "o2", starts: "2026-06-01T00:00:00.000Z", expires: "2026-07-01T00:00:00.000Z" }]),
        state("forever", [{ orderId: "o3", starts: "2026-01-01T00:00:00.000Z" }]),
        state("expired", [{ orderId: "o4", starts: "2026-03-01T00:00:00.000Z", expires: "2026-05-01T00:00:00.000Z" }]),
        state("gift", [{ starts: "2026-04-01T00:00:00.000Z", expires: "2026-06-01T00:00:00.000Z" }]),
      ],
      at,
    );
    expect([...groups].sort()).toEqual(["current", "forever", "future"]);
  });

  it("adds the groups of standing renewing subscriptions, whether or not a grant of theirs runs", () => {
    const expired = state("pro", [{ orderId: "o5", starts: "2026-04-01T00:00:00.000Z", expires: "2026-05-01T00:00:00.000Z" }]);
    expect([...groupsUnlockedBy([expired], at)]).toEqual([]);
    expect([...groupsUnlockedBy([expired], at, ["pro"])]).toEqual(["pro"]);
    expect([...groupsUnlockedBy([], at, ["pro", "team"])].sort()).toEqual(["pro", "team"]);
  });
});
