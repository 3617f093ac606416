#!/usr/bin/perl
# Nothing but the upload is ever opened: playlists (HLS, ffconcat), the
# AVI GAB2 + HLS trick, MOV external data references, formats outside the
# allow-list, and vconv_input_formats restricting further.  A loopback
# listener records any connection; no byte of /etc/passwd may come back.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;
use VconvMedia ();
use VconvHostile qw(:all);

my $dir = tempdir('vconv-hio-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $SECRET = qr/root:x:0:0|daemon:x:1:1/;
my $passwd = slurp('/etc/passwd');
like($passwd, $SECRET, '/etc/passwd has the marker we look for');

my $l = VconvHostile::Listener->new(lifetime => 300);
my $lp = $l->port;
my $ng = VconvNginx->new(workers => 1)->start;

# every byte that came back to us, to search for the secret at the end
my @seen;

sub try_upload {
    my ($file, $query, $name) = @_;
    my $r = $ng->post_file("/api/jobs?$query", $file, name => $name);
    push @seen, $r->{body} // '';
    push @seen, join "\n", map { "$_->[0]: $_->[1]" } @{ $r->{header_list} };
    return $r;
}

sub job_of {
    my ($r, $timeout) = @_;
    return undef unless $r->{status} == 202 && $r->{json} && $r->{json}{id};
    my $job = $ng->wait_job($r->{json}{id}, $timeout // 30);
    push @seen, VconvNginx->json->encode($job) if $job;
    if ($job && ($job->{status} // '') eq 'done') {
        my $out = "$dir/out-$job->{id}";
        $ng->download($job->{id}, $out);
        push @seen, slurp($out) if -f $out;
    }
    return $job;
}

sub refused_415 {
    my ($file, $name, $what) = @_;
    # wait=1: the answer is the final one
    my $r = try_upload($file, 'format=mp4&wait=1', $name);
    my $code = $r->{json} && ref $r->{json}{error} eq 'HASH'
             ? $r->{json}{error}{code} // '' : '';
    ok($r->{status} == 415
       && $code =~ /^(unsupported_input|input_format_not_allowed)$/,
       "$what: wait=1 -> 415 unsupported_input|input_format_not_allowed")
        or diag("status $r->{status} body " . substr($r->{body}, 0, 300));
    # and without wait: a job that ends failed with that code
    $r = try_upload($file, 'format=mp4', $name);
    if ($r->{status} == 202) {
        my $job = job_of($r);
        ok($job && $job->{status} eq 'failed'
           && ($job->{error}{code} // '')
              =~ /^(unsupported_input|input_format_not_allowed)$/,
           "$what: async job ends failed with a 415-class code")
            or diag(VconvNginx->json->encode($job // {}));
    } else {
        ok($r->{status} == 415, "$what: async upload refused with 415")
            or diag("status $r->{status}");
    }
}

# --- HLS playlists --------------------------------------------------------
my %pl = (
    file    => ['file:///etc/passwd'],
    http    => ["http://127.0.0.1:$lp/seg.ts"],
    concat  => ['concat:/etc/passwd|/etc/passwd'],
    subfile => ['subfile,,start,0,end,0,,:/etc/passwd'],
    mixed   => ['/etc/passwd', "http://127.0.0.1:$lp/a.ts",
                'file:///etc/passwd', "concat:http://127.0.0.1:$lp/b.ts"],
);
for my $k (sort keys %pl) {
    my $f = hls_playlist($dir, "$k.m3u8", @{ $pl{$k} });
    refused_415($f, "$k.m3u8", "HLS playlist ($k)");
}
# the same text with a master playlist pointing at the listener
{
    my $f = "$dir/master.m3u8";
    spew($f, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n"
           . "http://127.0.0.1:$lp/variant.m3u8\n");
    refused_415($f, 'master.m3u8', 'HLS master playlist');
}

# --- ffconcat --------------------------------------------------------------
{
    my $f = ffconcat_list($dir, 'list.ffconcat', '/etc/passwd',
                          "http://127.0.0.1:$lp/c.ts");
    refused_415($f, 'list.ffconcat', 'ffconcat list');
    my $f2 = "$dir/list.txt";
    spew($f2, "ffconcat version 1.0\nfile /etc/passwd\n");
    refused_415($f2, 'list.txt', 'ffconcat list (minimal)');
}

# --- AVI with a GAB2 subtitle carrying a playlist ---------------------------
{
    my $m3u = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TARGETDURATION:2\n"
            . "#EXTINF:2,\nhttp://127.0.0.1:$lp/gab2.ts\n"
            . "#EXTINF:2,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n";
    my $avi = avi_gab2_hls($dir, 'gab2.avi', $m3u);
    my $p = VconvMedia::probe($avi);
    ok($p && grep({ ($_->{tags}{title} // '') eq 'vconv-gab2' } @{ $p->{streams} }),
       'the crafted AVI parses and its GAB2 header is read (title tag)');
    for my $fmt (qw(mp4 webm)) {
        my $r = try_upload($avi, "format=$fmt", 'gab2.avi');
        ok($r->{status} == 202 || $r->{status} == 415 || $r->{status} == 422,
           "GAB2 AVI -> $fmt: taken or refused (status $r->{status})");
        my $job = job_of($r);
        ok(!$job || $job->{status} =~ /^(done|failed)$/,
           "GAB2 AVI -> $fmt: job ends (" . ($job ? $job->{status} : 'none') . ')');
    }
}

# --- MOV with an external data reference ------------------------------------
{
    my $src = VconvMedia::make_media($dir, 'mp4', name => 'dref-src.mp4');
    my $mov = mov_dref($dir, $src, 'dref.mov', '/etc/passwd');
    my $out = `ffprobe -v warning -hide_banner '$mov' 2>&1`;
    like($out, qr/Skipped opening external track.*\/etc\/passwd/,
         'the crafted MOV carries an external reference to /etc/passwd');
    my $r = try_upload($mov, 'format=mp4', 'dref.mov');
    ok($r->{status} == 202 || $r->{status} == 415,
       "dref MOV: taken or refused (status $r->{status})");
    my $job = job_of($r);
    ok(!$job || $job->{status} =~ /^(done|failed)$/,
       'dref MOV: job ends (' . ($job ? "$job->{status} "
          . ($job->{error}{code} // '') : 'none') . ')');
    $r = try_upload($mov, 'format=mp4&vcodec=copy', 'dref.mov');
    $job = job_of($r);
    ok(!$job || $job->{status} =~ /^(done|failed)$/,
       'dref MOV remux: job ends');
    unlike($ng->error_log, qr/error opening alias/,
           'libav never tried to open the alias');
}

# --- valid media outside the allow-list -------------------------------------
{
    my $nut = VconvMedia::make_media($dir, 'nut');
    my $r = try_upload($nut, 'format=mp4&wait=1', 'a.nut');
    VconvNginx::is_api_error($r, 415, 'input_format_not_allowed',
                             'NUT (valid, not allowed) -> 415 input_format_not_allowed');
    # MXF joined the default list (issue 23); RealMedia stays out
    my $rm = "$dir/a.rm";
    ff('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1',
       '-c:v', 'rv10', '-f', 'rm', $rm);
    $r = try_upload($rm, 'format=mp4&wait=1', 'a.rm');
    VconvNginx::is_api_error($r, 415, 'input_format_not_allowed',
                             'RealMedia (valid, not allowed) -> 415 input_format_not_allowed');
}

# --- nothing was opened ------------------------------------------------------
sleep 1;
my @conn = $l->connections;
is(scalar @conn, 0, 'the loopback listener saw no connection')
    or diag(join "\n", @conn);
my $leak = grep { /$SECRET/ } @seen;
is($leak, 0, 'no byte of /etc/passwd in any answer, job JSON or output ('
             . scalar(@seen) . ' pieces checked)');
unlike($ng->error_log, $SECRET, 'no byte of /etc/passwd in the error log');
my @odd = grep { !/^[A-Za-z0-9_-]+$/ } @{ $ng->store_entries };
is("@odd", '', 'the store holds only job-id folders');
$ng->assert_clean_log;
$ng->stop;

# --- vconv_input_formats restricts further -----------------------------------
{
    my $ng2 = VconvNginx->new(http => "    vconv_input_formats matroska,webm;\n")->start;
    my $mp4 = VconvMedia::make_media($dir, 'mp4', name => 'r.mp4');
    my $mkv = VconvMedia::make_media($dir, 'mkv', name => 'r.mkv');
    my $r = $ng2->post_file('/api/jobs?format=webm&wait=1', $mp4, name => 'r.mp4');
    VconvNginx::is_api_error($r, 415, 'input_format_not_allowed',
        'vconv_input_formats matroska,webm: MP4 -> 415 input_format_not_allowed');
    $r = $ng2->post_file('/api/jobs?format=mp4&wait=1', $mkv, name => 'r.mkv');
    is($r->{status}, 200, '... and an MKV is converted (200 with wait=1)')
        or diag(substr($r->{body}, 0, 300));
    my $hls = hls_playlist($dir, 'r.m3u8', "http://127.0.0.1:$lp/r.ts");
    $r = $ng2->post_file('/api/jobs?format=mp4&wait=1', $hls, name => 'r.m3u8');
    is($r->{status}, 415, '... and a playlist still 415');
    $ng2->assert_clean_log;
    $ng2->stop;
}
is(scalar(my @c2 = $l->connections), 0, 'still no connection to the listener');
$l->stop;

done_testing;
