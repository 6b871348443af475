"""Principle 1 applied to a query: every analytics read passes through `scoped`.

    admin        everything; grouping or filtering by user_id is a people view, which the
                 API audits (`ScopedQuery.people_view`)
    team-lead    rows of its teams only (forced); a team filter naming another team is 403
    member       its own user's figures only (forced); a user_id filter naming another
                 user is 403
    others       no per-user views: grouping or filtering by user_id is 403

The restriction is carried to SQL as `teams` / `user_id`, applied to every statement a
panel runs, whatever it groups by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sluicegate.analytics.dimensions import DIMENSIONS, Dimension
from sluicegate.analytics.query import AnalyticsQuery
from sluicegate.errors import PermissionDenied

TEAM = DIMENSIONS["team"]
USER = DIMENSIONS["user_id"]


class Scope(Protocol):
    """What a caller may see (`server.roles.analytics_scope` makes one from a principal)."""

    @property
    def teams(self) -> tuple[str, ...] | None: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def may_see_people(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ScopedQuery:
    query: AnalyticsQuery
    teams: tuple[str, ...] | None  # rows of these teams only; None: every team
    user_id: str | None  # rows of this user only; None: every user
    people_view: bool  # figures per person that someone else is reading (audited)
    # the caller may see figures of people (admins; a member, of itself): a panel that
    # names rules or budgets about particular users shows them to admins only
    may_see_people: bool = False

    @property
    def sees_everyone(self) -> bool:
        """Unrestricted, people included: an admin."""
        return self.may_see_people and self.teams is None and self.user_id is None

    def restricted_dimensions(self) -> list[Dimension]:
        """Dimensions the restriction itself reads: a source must have them."""
        return [d for d, on in ((TEAM, self.teams is not None), (USER, self.user_id)) if on]


def scoped(query: AnalyticsQuery, scope: Scope) -> ScopedQuery:
    """`query` narrowed to what `scope` may see; PermissionDenied (403) for a query that
    asks for more."""
    people = [d for d in query.dimensions() if isinstance(d, Dimension) and d.people]
    if people and not scope.may_see_people:
        raise PermissionDenied(
            f"figures by {people[0].name} are visible to admins and to each member for "
            "itself only: group by team, project or workflow_tag instead",
            param="group_by" if people[0] in query.group_by else people[0].name,
            code="people_view_forbidden",
        )
    if scope.user_id is not None:
        asked = query.filter_on(USER.name)
        if asked is not None and asked != scope.user_id:
            raise PermissionDenied(
                "a member sees its own figures only: user_id must be its own",
                param=USER.name,
                code="people_view_forbidden",
            )
    if scope.teams is not None:
        team = query.filter_on(TEAM.name)
        if team is not None and team not in scope.teams:
            raise PermissionDenied(
                f"team {team!r} is not one of this token's teams ({', '.join(scope.teams)})",
                param=TEAM.name,
                code="team_forbidden",
            )
    return ScopedQuery(
        query,
        teams=scope.teams,
        user_id=scope.user_id,
        people_view=bool(people) and scope.user_id is None,
        may_see_people=scope.may_see_people,
    )
